// One local cluster shared by the cases of a test file, with pool `vms` (size 3, min_size 2,
// 32 PGs, failure domain osd): started in the file's test.before, stopped in its
// test.after.always; each case gets its own image on it, with a client whose caps cover the
// pool. A cluster that did not start fails each case that asks for it, with the cause.
import { startLocalCluster, type ClusterImage, type LocalCluster, type LocalClusterOptions } from './cluster-backend.js';

const POOL = 'vms';

export class SharedClusterPool {
  private started: LocalCluster | undefined;
  private error: Error | undefined;

  constructor(private readonly options: LocalClusterOptions) {}

  /** For test.before: starts the cluster and creates the pool; a failure is kept for the cases. */
  async start(): Promise<void> {
    try {
      this.started = await startLocalCluster(this.options);
      await this.started.admin(['pool', 'create', POOL, '--size', '3', '--min-size', '2', '--pg-num', '32', '--failure-domain', 'osd']);
      await this.started.waitHealthy();
    } catch (e) {
      this.error = e as Error;
    }
  }

  /** For test.after.always. */
  async stop(): Promise<void> {
    await this.started?.stop();
  }

  /** The cluster; throws when it did not start. */
  get cluster(): LocalCluster {
    if (this.started === undefined) throw new Error(`the local cluster did not start: ${this.error?.message ?? '?'}`);
    return this.started;
  }

  /** A new image POOL/NAME of `sizeMiB` and client `client.NAME` with caps on the pool. */
  async image(name: string, sizeMiB: number): Promise<ClusterImage> {
    const cluster = this.cluster;
    await cluster.admin(['image', 'create', `${POOL}/${name}`, '--size', `${sizeMiB}M`]);
    const client = `client.${name}`;
    const keyring = await cluster.addClient(client, POOL);
    return { cluster, pool: POOL, image: name, spec: `${POOL}/${name}`, client, keyring };
  }
}
