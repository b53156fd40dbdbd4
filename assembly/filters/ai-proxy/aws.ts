// Requests to a provider that AWS signs (Bedrock): the SigV4 headers of the final request, made
// from the instance's credentials (its VM's environment) at the moment it leaves, for the live
// request (request.ts send) and a fallback's (fallback.ts).
import { nowNanos } from "../../lib/sdk";
import { AwsCredentials, signV4 } from "../../lib/sigv4";
import { Instance, Provider, Upstream } from "../../providers/types";

/** Adds the signature of the request (POST up.path with body) to up.headers, when the provider signs. */
export function signUpstream(provider: Provider, inst: Instance, up: Upstream, bodyPtr: usize, bodyLen: i32): void {
  const service = provider.awsService;
  if (service.length == 0 || inst.aws === null) return;
  const signed = ["host", inst.authority, "content-type", "application/json"].concat(up.headers);
  const added = signV4(inst.aws as AwsCredentials, inst.region, service, "POST", up.path, "", signed, bodyPtr, bodyLen, <i64>(nowNanos() / 1000000));
  up.headers = up.headers.concat(added);
}
