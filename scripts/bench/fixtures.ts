// Bodies the filter benchmark sends: a realistic OpenAI chat request (system prompt, a multi-turn
// conversation with a tool call and its result, one tool definition), grown to 32 KB for the large
// case; provider answers of about 1 KB in OpenAI's and Anthropic's formats; and an Anthropic stream
// of content_block_delta events, one event per chunk as a provider writes them.

const SYSTEM =
  "You are Atlas, the support assistant of Northwind Outfitters. Answer in the customer's language, " +
  "in short paragraphs. Use the order tools instead of guessing, never invent tracking numbers, and " +
  "escalate to a human when the customer asks for a refund above 200 EUR.";

const TOOL = {
  type: "function",
  function: {
    name: "get_order_status",
    description: "Look up an order by its number and return its status, carrier and expected delivery date.",
    parameters: {
      type: "object",
      properties: {
        order_id: { type: "string", description: "Order number, e.g. NW-48213" },
        include_items: { type: "boolean", description: "Also return the line items" },
      },
      required: ["order_id"],
    },
  },
};

/** One exchange. Even: the customer asks, the assistant calls the tool, the tool answers, the
 * assistant replies. Odd: a plain question and answer. */
function exchange(i: number): object[] {
  const order = `NW-${48213 + i}`;
  if (i % 2 === 1) {
    return [
      { role: "user", content: `Do you also sell waterproof gaiters that fit the Ridge boots, size 4${i % 10}?` },
      { role: "assistant", content: "Yes: the Trailguard gaiters (size M) fit Ridge boots from 42 to 45. They are in stock at 29 EUR and ship with the same parcel if you order today." },
    ];
  }
  return [
    { role: "user", content: `Hi, I ordered a rain jacket and two pairs of hiking socks last week (order ${order}). The website still says "processing". Can you tell me when it will arrive?` },
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id: `call_${(9000 + i).toString(36)}abc`, type: "function", function: { name: "get_order_status", arguments: JSON.stringify({ order_id: order, include_items: true }) } }],
    },
    { role: "tool", tool_call_id: `call_${(9000 + i).toString(36)}abc`, content: JSON.stringify({ status: "shipped", carrier: "DHL", eta: "2025-06-1" + (i % 10), items: 3 }) },
    { role: "assistant", content: `Good news: order ${order} left our warehouse yesterday with DHL and should reach you on June 1${i % 10}. You will get the tracking link by e-mail within the hour.` },
  ];
}

function request(exchanges: number, lastQuestion: string, stream: boolean): object {
  const messages: object[] = [{ role: "system", content: SYSTEM }];
  for (let i = 0; i < exchanges; i++) messages.push(...exchange(i));
  messages.push({ role: "user", content: lastQuestion });
  const body: Record<string, unknown> = { model: "", messages, tools: [TOOL], tool_choice: "auto", temperature: 0.4, max_tokens: 512, user: "customer-7781" };
  if (stream) body.stream = true;
  return body;
}

const LAST = "Thanks! One more thing: the socks were the wrong size (EU 39-42 instead of 43-46). Can I exchange them, and do I need to send them back first?";

const MORE = [
  " Also, my brother ordered the same jacket in blue last month and says the zipper feels a bit stiff.",
  " Is that normal for the first weeks, or should he ask for a replacement as well?",
  " We are leaving for the Dolomites on the 20th, so timing matters a little.",
  " If the exchange takes longer, could you ship the new socks to my office instead?",
  " The address is Via Roma 12, Bolzano; the reception is open from 8 to 18.",
  " Thanks a lot for your help, the jacket itself is great.",
];

/** A request body of exactly `targetBytes`: whole exchanges, then the last question grown. */
function sized(model: string, targetBytes: number, stream = false): string {
  const build = (n: number, extra: number) => {
    let more = "";
    for (let k = 0; more.length < extra; k++) more += MORE[k % MORE.length];
    const body = request(n, LAST + more.slice(0, extra), stream) as Record<string, unknown>;
    body.model = model;
    return JSON.stringify(body);
  };
  let n = 1;
  while (build(n + 1, 0).length <= targetBytes) n++;
  return build(n, Math.max(0, targetBytes - build(n, 0).length));
}

export const openaiRequest2k = (model: string, stream = false) => sized(model, 2048, stream);
export const openaiRequest32k = (model: string) => sized(model, 32768);
export const openaiRequest256k = (model: string) => sized(model, 262144);

const ANSWER_TEXT =
  "Yes, you can exchange them. You do not need to send the socks back first: I have opened exchange " +
  "request EX-20931 for one pair of hiking socks in EU 43-46, and the replacement will ship today with " +
  "your next-day option at no cost. Please return the wrong pair within 30 days using the prepaid label " +
  "attached to the confirmation e-mail; just drop the parcel at any DHL point. If the label does not " +
  "arrive within the hour, reply here and I will send it again.";

/** An OpenAI chat.completion answer of about 1 KB. */
export function openaiAnswer(model: string): string {
  return JSON.stringify({
    id: "chatcmpl-BkQ3X9f2a7Lr0sTnYwE1uJ5bC8dH4",
    object: "chat.completion",
    created: 1750000000,
    model,
    choices: [{ index: 0, message: { role: "assistant", content: ANSWER_TEXT, refusal: null, annotations: [] }, logprobs: null, finish_reason: "stop" }],
    usage: {
      prompt_tokens: 512, completion_tokens: 96, total_tokens: 608,
      prompt_tokens_details: { cached_tokens: 384, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: "default",
    system_fingerprint: "fp_4c2851f862",
  });
}

/** An Anthropic Messages answer of about 1 KB. */
export function anthropicAnswer(model: string): string {
  return JSON.stringify({
    id: "msg_01XFDUDYJgAACzvnptvVoYEL",
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text: ANSWER_TEXT + " Have a good hike! If anything else about the order or the exchange is unclear, just ask; I am here all day and can also update your delivery address before the parcel leaves the depot." }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 128, cache_creation_input_tokens: 0, cache_read_input_tokens: 384, output_tokens: 96, service_tier: "standard" },
  });
}

function sse(event: string, data: object): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** An Anthropic text stream: head events, `deltas` content_block_delta events (one chunk each), tail events. */
export function anthropicStream(model: string, deltas: number): { head: string[]; deltas: string[]; tail: string[] } {
  const words = ANSWER_TEXT.split(" ");
  const head = [
    sse("message_start", { type: "message_start", message: { id: "msg_01XFDUDYJgAACzvnptvVoYEL", type: "message", role: "assistant", content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: 128, cache_creation_input_tokens: 0, cache_read_input_tokens: 384, output_tokens: 1 } } }),
    sse("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    sse("ping", { type: "ping" }),
  ];
  const out: string[] = [];
  for (let i = 0; i < deltas; i++) {
    const text = words.slice((i * 2) % words.length, ((i * 2) % words.length) + 2).join(" ") + " ";
    out.push(sse("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } }));
  }
  const tail = [
    sse("content_block_stop", { type: "content_block_stop", index: 0 }),
    sse("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: deltas * 2 } }),
    sse("message_stop", { type: "message_stop" }),
  ];
  return { head, deltas: out, tail };
}

/** The data: payload of one SSE event. */
export function sseDataOf(event: string): string {
  return event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
}
