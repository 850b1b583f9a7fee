/**
 * The cluster protocol: `proto/dist_build/v1/cluster.proto`, loaded at run time by
 * `@grpc/proto-loader` (the bundles carry the .proto text; nothing is hand-parsed), and the
 * TypeScript shapes of its messages as proto-loader hands them over: field names as in the .proto
 * (`keepCase`), 64-bit integers as numbers, enums as their names, defaults filled in.
 */
import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import protoText from '../../proto/dist_build/v1/cluster.proto';

/** Connection type in membership records. */
export const PROTOCOL = 'grpc.v1';

/** Largest message either side accepts; bigger ones are refused with RESOURCE_EXHAUSTED. */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** How long the master waits for a worker's answer to the cache query (HasCache). */
export const CACHE_QUERY_TIMEOUT_MS = 30_000;
/**
 * What a worker gives its slower (remote) stores of that: it answers with what it has found by
 * then (its local hits), so a store that hangs costs a miss there, not every hit.
 */
export const CACHE_QUERY_REMOTE_BUDGET_MS = 20_000;
/**
 * How long a worker waits, before building a unit the cache query could not settle in time (see
 * `PeekOptions.unsettled`), for its stores to find the result after all: an Actions cache shard
 * still being restored, a registry that answered too slowly. Past it, the unit is built.
 */
export const LATE_HIT_WAIT_MS = 60_000;

export interface Connection {
  type: string;
  socket: string;
}
export interface Stats {
  cpu?: { loadavg: number[]; cpus: number } | null;
  mem?: { total: number; free: number } | null;
  disk: { name: string; path: string; free: number; total: number }[];
  running: number;
  slots: number;
}
export interface Member {
  worker_id: string;
  connections: Connection[];
  stats?: Stats | null;
  annotations: Record<string, string>;
}
export interface OutputEntryMsg {
  path: string;
  type: string;
  digest: string;
  size: number;
  files: number;
}
export interface JobReport {
  job_id: string;
  unit: string;
  invocation: string;
  cache_key: string;
  state: string;
  has_exit_code: boolean;
  exit_code: number;
  signal: string;
  reason: string;
  started_at: number;
  ended_at: number;
  duration_ms: number;
  outputs: OutputEntryMsg[];
  output_bytes: number;
  worker_fault: boolean;
  lost_deps: string[];
  command_ms: number;
  /** Succeeded without running: found in the worker's stores after the cache query. */
  from_cache?: boolean;
}
export interface RunningJob {
  job_id: string;
  unit: string;
  cache_key: string;
  started_at: number;
}
export interface RegisterRequest {
  member: Member;
  config_digest: string;
  running: RunningJob[];
  unreported: JobReport[];
}
export interface RegisterResponse {
  worker_uuid: string;
  worker_id: string;
  lease_ttl_ms: number;
  heartbeat_ms: number;
  master_id: string;
}
export interface HeartbeatRequest {
  worker_uuid: string;
  /** Set on beats only (null on a message that carries only acks or reports). */
  stats: Stats | null;
  running: RunningJob[];
  acks: StartJobAck[];
  reports: JobReport[];
}
export interface StartJobAck {
  job_id: string;
  accepted: boolean;
  reason: string;
}
export type MasterCommand = 'NONE' | 'REREGISTER' | 'SHUTDOWN';
export interface HeartbeatResponse {
  command: MasterCommand;
  lease_ttl_ms: number;
  start_jobs: StartJobRequest[];
  report_acks: string[];
}
export interface DeregisterRequest {
  worker_uuid: string;
  reason: string;
}
export interface ReportResultRequest {
  worker_uuid: string;
  report: JobReport;
}
export interface ReportResultResponse {
  accepted: boolean;
  reason: string;
}
export interface MemberStatus {
  worker_uuid: string;
  member: Member;
  running: RunningJob[];
  registered_at: number;
  last_heartbeat_at: number;
  done: number;
}
export interface UnitStatus {
  unit: string;
  state: string;
  worker: string;
  attempts: number;
}
export interface StatusResponse {
  master_id: string;
  started_at: number;
  members: MemberStatus[];
  config: string;
  units: UnitStatus[];
  /** While the master waits for its workers before a run: how many, and until when (epoch ms). */
  waiting_for: number;
  waiting_until: number;
}
export interface LogsRequest {
  invocation: string;
  follow: boolean;
  from: number;
}
export interface Holder {
  worker_id: string;
  connections: Connection[];
}
export interface DependencyMsg {
  unit: string;
  cache_key: string;
  outputs: OutputEntryMsg[];
  holders: Holder[];
}
export interface StartJobRequest {
  worker_uuid: string;
  job_id: string;
  unit: string;
  invocation: string;
  definition_digest: string;
  cache_key: string;
  deps: DependencyMsg[];
  exclude_inputs: string[];
  /** Absent or empty from a master that predates it. */
  excluded_outputs?: string[];
  /** The unit's last result's cache key, when the master knows one other than `cache_key`. */
  previous_cache_key?: string;
}
export interface StartJobResponse {
  accepted: boolean;
  reason: string;
}
export interface StopJobRequest {
  worker_uuid: string;
  job_id: string;
  reason: string;
}
export interface JobStatusRequest {
  worker_uuid: string;
  job_id: string;
}
export interface JobStatusResponse {
  found: boolean;
  state: string;
  report?: JobReport | null;
  output_bytes: number;
}
export interface StreamOutputRequest {
  worker_uuid: string;
  job_id: string;
  from: number;
  follow: boolean;
}
export interface OutputChunkMsg {
  offset: number;
  stream: string;
  data: Buffer;
}
export interface ResultSummary {
  cache_key: string;
  outputs: OutputEntryMsg[];
  duration_ms: number;
  worker: string;
}
export interface HasCacheRequest {
  worker_uuid: string;
  cache_keys: string[];
}
export interface HasCacheResponse {
  cache_keys: string[];
  results: ResultSummary[];
}
export interface FetchBlobRequest {
  worker_uuid: string;
  digest: string;
}
export interface BlobChunk {
  data: Buffer;
  size: number;
}
export interface ExportRequest {
  worker_uuid: string;
  unit: string;
  cache_key: string;
  path: string;
  digest: string;
}
export type PushImageRequest = ExportRequest;
export interface PushImageResponse {
  pushed: { ref: string; digest: string }[];
}

/** Unary handler shape used by the service implementations. */
export type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;
export type ServerStream<Req, Res> = grpc.handleServerStreamingCall<Req, Res>;

export interface MasterHandlers extends grpc.UntypedServiceImplementation {
  Register: Unary<RegisterRequest, RegisterResponse>;
  Heartbeat: grpc.handleBidiStreamingCall<HeartbeatRequest, HeartbeatResponse>;
  Deregister: Unary<DeregisterRequest, Record<string, never>>;
  ReportResult: Unary<ReportResultRequest, ReportResultResponse>;
  Status: Unary<Record<string, never>, StatusResponse>;
  Logs: ServerStream<LogsRequest, OutputChunkMsg>;
}

export interface WorkerHandlers extends grpc.UntypedServiceImplementation {
  StartJob: Unary<StartJobRequest, StartJobResponse>;
  StopJob: Unary<StopJobRequest, { found: boolean }>;
  JobStatus: Unary<JobStatusRequest, JobStatusResponse>;
  StreamOutput: ServerStream<StreamOutputRequest, OutputChunkMsg>;
  HasCache: Unary<HasCacheRequest, HasCacheResponse>;
  FetchBlob: ServerStream<FetchBlobRequest, BlobChunk>;
  Export: ServerStream<ExportRequest, BlobChunk>;
  PushImage: Unary<PushImageRequest, PushImageResponse>;
}

type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;
type StreamMethod<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options?: Partial<grpc.CallOptions>,
) => grpc.ClientReadableStream<Res>;

export interface MasterClient extends grpc.Client {
  Register: UnaryMethod<RegisterRequest, RegisterResponse>;
  Heartbeat: (
    metadata: grpc.Metadata,
    options?: Partial<grpc.CallOptions>,
  ) => grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse>;
  Deregister: UnaryMethod<DeregisterRequest, Record<string, never>>;
  ReportResult: UnaryMethod<ReportResultRequest, ReportResultResponse>;
  Status: UnaryMethod<Record<string, never>, StatusResponse>;
  Logs: StreamMethod<LogsRequest, OutputChunkMsg>;
}

export interface WorkerClient extends grpc.Client {
  StartJob: UnaryMethod<StartJobRequest, StartJobResponse>;
  StopJob: UnaryMethod<StopJobRequest, { found: boolean }>;
  JobStatus: UnaryMethod<JobStatusRequest, JobStatusResponse>;
  StreamOutput: StreamMethod<StreamOutputRequest, OutputChunkMsg>;
  HasCache: UnaryMethod<HasCacheRequest, HasCacheResponse>;
  FetchBlob: StreamMethod<FetchBlobRequest, BlobChunk>;
  Export: StreamMethod<ExportRequest, BlobChunk>;
  PushImage: UnaryMethod<PushImageRequest, PushImageResponse>;
}

type ClientCtor<C> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => C;

export interface Protocol {
  MasterService: grpc.ServiceDefinition;
  WorkerService: grpc.ServiceDefinition;
  MasterClient: ClientCtor<MasterClient>;
  WorkerClient: ClientCtor<WorkerClient>;
}

let loaded: Protocol | undefined;

/** The services and client constructors of `dist_build.v1`, loaded once per process. */
export function protocol(): Protocol {
  if (loaded) return loaded;
  const root = protobuf.parse(protoText, { keepCase: true }).root;
  const definition = fromJSON(root.toJSON(), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    arrays: true,
    objects: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    dist_build: {
      v1: {
        Master: grpc.ServiceClientConstructor;
        Worker: grpc.ServiceClientConstructor;
      };
    };
  };
  const { Master, Worker } = pkg.dist_build.v1;
  loaded = {
    MasterService: Master.service,
    WorkerService: Worker.service,
    MasterClient: Master as unknown as ClientCtor<MasterClient>,
    WorkerClient: Worker as unknown as ClientCtor<WorkerClient>,
  };
  return loaded;
}

/** Promise form of a unary client call with a deadline. */
export function call<Req, Res>(
  client: grpc.Client,
  method: UnaryMethod<Req, Res>,
  req: Req,
  metadata: grpc.Metadata,
  timeoutMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, req, metadata, { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(err);
      else resolve(res as Res);
    });
  });
}
