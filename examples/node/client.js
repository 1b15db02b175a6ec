// A voting client in Node.js, built straight from the repo's .proto files (no generated
// code): create a poll, watch its results live, vote, close it, and read the stream until
// the FINAL snapshot ends it. Refusals are decoded down to their google.rpc details
// (BadRequest, ErrorInfo, ...), from the vendored proto/google/rpc protos.
//
//   node client.js [poll_id]
//
// Targets: VOTING_COMMAND_TARGET (default 127.0.0.1:50051) and VOTING_QUERY_TARGET
// (default 127.0.0.1:50052). stdout carries JSON lines only: one per WatchResults update,
// then a summary {"cast": N, "poll_id": ..., "refused": <a refusal decoded>}. Progress and errors go to stderr. Exits 0
// once the stream has ended after the FINAL snapshot, 1 on any error.

import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../proto");
const COMMAND_TARGET = process.env.VOTING_COMMAND_TARGET || "127.0.0.1:50051";
const QUERY_TARGET = process.env.VOTING_QUERY_TARGET || "127.0.0.1:50052";

const OPTIONS = [
  { option_id: "node", label: "Node.js" },
  { option_id: "python", label: "Python" },
  { option_id: "go", label: "Go" },
];
const BATCH_VOTES = 30;
const SINGLE_VOTES = 3;
const CALL_TIMEOUT_MS = 10_000;
const FINAL_TIMEOUT_MS = 60_000;
const POLL_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

class ClientError extends Error {}

function loadServices() {
  const definition = protoLoader.loadSync(
    ["voting/v1/command_service.proto", "voting/v1/query_service.proto"],
    {
      includeDirs: [PROTO_ROOT],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    },
  );
  return grpc.loadPackageDefinition(definition).voting.v1;
}

// google.rpc.Status and the error details every refusal carries, in the trailer
// `grpc-status-details-bin`. protobufjs bundles google/protobuf/*.proto itself.
function loadErrorTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    target.startsWith("google/protobuf/") ? target : path.join(PROTO_ROOT, target);
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"], {
    keepCase: true,
  });
  return root;
}

const ERROR_TYPES = loadErrorTypes();
const STATUS = ERROR_TYPES.lookupType("google.rpc.Status");

// The refusal as {code, message, details: [{"@type": ..., ...fields}]}.
function refusal(err) {
  const [raw] = err.metadata?.get("grpc-status-details-bin") ?? [];
  const details = [];
  if (raw) {
    for (const any of STATUS.decode(raw).details) {
      const name = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
      const type = ERROR_TYPES.lookupType(name);
      details.push({ "@type": name, ...type.toObject(type.decode(any.value), { longs: String }) });
    }
  }
  return { code: grpc.status[err.code] ?? err.code, message: err.details, details };
}

function describe(err) {
  const { code, message, details } = refusal(err);
  const extra = details.length ? ` ${JSON.stringify(details)}` : "";
  return `${code}: ${message || err.message}${extra}`;
}

// A unary call as a promise, with a deadline and an error that names the RPC.
function call(client, method, request, timeoutMs = CALL_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + timeoutMs }, (err, reply) => {
      if (err) {
        const failure = new ClientError(`${method} failed: ${describe(err)}`);
        failure.code = err.code;
        failure.refusal = refusal(err);
        reject(failure);
      } else {
        resolve(reply);
      }
    });
  });
}

// Settles like `promise`, or rejects with `message` after `ms`.
function within(promise, ms, message) {
  let timer;
  const expiry = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ClientError(message)), ms);
  });
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

function printUpdate(results) {
  const counts = {};
  for (const { option_id, votes } of results.counts) counts[option_id] = Number(votes);
  const line = {
    version: Number(results.version),
    total: Number(results.total),
    counts,
    final: results.final,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

// Reads the stream to its end, printing every update; resolves with the last snapshot.
async function watch(stream, onFirst) {
  let last = null;
  for await (const { results } of stream) {
    printUpdate(results);
    if (last === null) onFirst();
    last = results;
  }
  return last;
}

function vote(pollId, runId, i) {
  return {
    request_id: `node-${runId}-vote-${i}`,
    poll_id: pollId,
    voter_id: `node-voter-${i}`,
    option_id: OPTIONS[i % 5 < 3 ? 0 : (i % 5) - 2].option_id,
  };
}

async function main() {
  const pollId = process.argv[2] || `node-demo-${Date.now()}`;
  if (!POLL_ID.test(pollId)) {
    throw new ClientError(
      `bad poll id ${JSON.stringify(pollId)}: 1 to 64 characters of [a-z0-9_-], ` +
        "starting with a letter or digit",
    );
  }
  const runId = randomUUID().slice(0, 12);
  const v1 = loadServices();
  const commands = new v1.CommandService(COMMAND_TARGET, grpc.credentials.createInsecure());
  const query = new v1.QueryService(QUERY_TARGET, grpc.credentials.createInsecure());
  let stream = null;
  let finalTimer = null;
  try {
    await call(commands, "CreatePoll", {
      request_id: `node-${runId}-create`,
      poll_id: pollId,
      title: "Which language is this client written in?",
      options: OPTIONS,
    });
    console.error(`created poll ${pollId} on ${COMMAND_TARGET}`);
    // Read-your-writes: GetPoll answers from the source of truth right after CreatePoll.
    await call(query, "GetPoll", { poll_id: pollId });

    stream = query.WatchResults({ poll_id: pollId });
    let timedOut = false;
    let subscribed;
    const firstSnapshot = new Promise((resolve) => {
      subscribed = resolve;
    });
    const watching = watch(stream, subscribed).catch((err) => {
      if (timedOut) {
        throw new ClientError(
          `no FINAL snapshot within ${FINAL_TIMEOUT_MS / 1000} s of closing the poll`,
        );
      }
      throw new ClientError(`WatchResults failed: ${describe(err)}`);
    });
    // Without a handler here, an early stream failure would be an unhandled rejection.
    watching.catch(() => {});
    // The stream opens with the current snapshot (no votes yet): from here on it shows
    // every change.
    await within(
      Promise.race([firstSnapshot, watching]),
      CALL_TIMEOUT_MS,
      `WatchResults sent no snapshot within ${CALL_TIMEOUT_MS / 1000} s`,
    );

    const batch = Array.from({ length: BATCH_VOTES }, (_, i) => vote(pollId, runId, i));
    const { results } = await call(commands, "CastVotes", { requests: batch });
    results.forEach((result, i) => {
      if (result.status.code !== 0) {
        const name = grpc.status[result.status.code] ?? result.status.code;
        throw new ClientError(`vote ${i} of the batch refused: ${name}: ${result.status.message}`);
      }
    });
    let cast = results.length;
    // A vote the service must refuse (a voter id that is only spaces): the refusal comes
    // with google.rpc.BadRequest naming the field, and changes nothing.
    let refused = null;
    try {
      await call(commands, "CastVote", { ...vote(pollId, runId, 999), voter_id: "   " });
      throw new ClientError("a vote with a blank voter id was accepted");
    } catch (err) {
      if (!err.refusal) throw err;
      refused = err.refusal;
      console.error(`refused as expected: ${err.message}`);
    }
    for (let i = BATCH_VOTES; i < BATCH_VOTES + SINGLE_VOTES; i++) {
      await call(commands, "CastVote", vote(pollId, runId, i));
      cast += 1;
    }
    console.error(`cast ${cast} votes from distinct voters`);

    // Every vote acknowledged before ClosePoll lies before the poll's close point, so the
    // recount that makes the results FINAL counts all of them.
    await call(commands, "ClosePoll", { request_id: `node-${runId}-close`, poll_id: pollId });
    console.error("closed the poll; waiting for the FINAL snapshot");
    finalTimer = setTimeout(() => {
      timedOut = true;
      stream.cancel();
    }, FINAL_TIMEOUT_MS);

    const last = await watching;
    if (last === null || !last.final) {
      throw new ClientError("WatchResults ended without a FINAL snapshot");
    }
    if (Number(last.total) !== cast) {
      console.error(`note: FINAL total ${last.total} differs from the ${cast} votes cast`);
    }
    process.stdout.write(`${JSON.stringify({ cast, poll_id: pollId, refused })}\n`);
  } finally {
    clearTimeout(finalTimer);
    stream?.cancel();
    commands.close();
    query.close();
  }
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (err) => {
    console.error(`client.js: ${err instanceof ClientError ? err.message : err.stack}`);
    process.exitCode = 1;
  },
);
