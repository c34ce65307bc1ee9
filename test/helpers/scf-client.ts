// The official tencentcloud-sdk-nodejs-scf client pointed at a running platform, for e2e tests.
import { scf } from "tencentcloud-sdk-nodejs-scf";

const ScfClient = scf.v20180416.Client;
/** The SDK's SCF client. */
export type ScfSdkClient = InstanceType<typeof ScfClient>;

/** An SDK client of one key pair, speaking plain HTTP to the platform at baseUrl. */
export function scfClient(baseUrl: string, secretId: string, secretKey: string): ScfSdkClient {
  return new ScfClient({
    credential: { secretId, secretKey },
    region: "ap-guangzhou",
    profile: { httpProfile: { endpoint: new URL(baseUrl).host, protocol: "http://", reqTimeout: 60 } },
  });
}

/** The error code an SDK call threw, or undefined when it succeeded. */
export async function sdkError(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}
