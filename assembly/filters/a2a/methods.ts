// The JSON-RPC methods of A2A the gateway routes: the v1.0 names (what @a2a-js/sdk 1.x sends) and the
// v0.3 names (agents and clients still on it). Anything else is -32601 from the gateway, so the
// method label of metrics and logs stays within this list.
const METHODS = [
  "SendMessage", "SendStreamingMessage", "GetTask", "ListTasks", "CancelTask", "SubscribeToTask",
  "CreateTaskPushNotificationConfig", "GetTaskPushNotificationConfig", "ListTaskPushNotificationConfigs",
  "ListTaskPushNotificationConfig", "DeleteTaskPushNotificationConfig", "GetExtendedAgentCard",
  "message/send", "message/stream", "tasks/get", "tasks/list", "tasks/cancel", "tasks/resubscribe",
  "tasks/pushNotificationConfig/set", "tasks/pushNotificationConfig/get", "tasks/pushNotificationConfig/list",
  "tasks/pushNotificationConfig/delete", "agent/getAuthenticatedExtendedCard",
];

export function isA2aMethod(m: string): bool {
  return METHODS.includes(m);
}
