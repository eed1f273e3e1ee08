// A Node client that knows only the .proto files: creates a collection (with a full-text index),
// ingests over the bidirectional stream, searches with a filter, runs a hybrid keyword + vector
// search and decodes a rich error. Prints one JSON object.
// With a CA file as third argument it connects over TLS and sends PGVECTOR_GRPC_API_KEY as
// `authorization: Bearer …` on every call (and checks that a call without it is refused).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const protoRoot = path.resolve(here, "../../protos");
const [address, collection, caFile] = process.argv.slice(2);

const definition = protoLoader.loadSync(
  ["pgvector_grpc/v1/collection_service.proto", "pgvector_grpc/v1/document_service.proto"],
  { includeDirs: [protoRoot], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
);
const v1 = grpc.loadPackageDefinition(definition).pgvector_grpc.v1;
const channelCredentials = caFile ? grpc.credentials.createSsl(readFileSync(caFile)) : grpc.credentials.createInsecure();
const apiKey = process.env.PGVECTOR_GRPC_API_KEY;
const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
  const metadata = new grpc.Metadata();
  metadata.add("authorization", `Bearer ${apiKey}`);
  callback(null, metadata);
});
// Call credentials travel only over TLS: without a CA the run is the unauthenticated one.
const credentials = caFile ? grpc.credentials.combineChannelCredentials(channelCredentials, bearer) : channelCredentials;
const collections = new v1.CollectionService(address, credentials);
const documents = new v1.DocumentService(address, credentials);

const unary = (client, method, request) =>
  new Promise((resolve, reject) => client[method](request, (err, res) => (err ? reject(err) : resolve(res))));

function ingest(batches) {
  return new Promise((resolve, reject) => {
    const acks = [];
    const call = documents.Ingest();
    call.on("data", (ack) => acks.push(ack));
    call.on("error", reject);
    call.on("end", () => resolve(acks));
    for (const batch of batches) call.write(batch);
    call.end();
  });
}


async function withoutKey() {
  const anonymous = new v1.CollectionService(address, channelCredentials);
  try {
    await unary(anonymous, "ListCollections", {});
    return null;
  } catch (err) {
    return { code: err.code };
  } finally {
    anonymous.close();
  }
}

async function main() {
  const created = await unary(collections, "CreateCollection", {
    collection: { name: collection, dimension: 3, metric: "METRIC_COSINE", text_search: {} },
  });
  const docs = (start, n) =>
    Array.from({ length: n }, (_, i) => ({
      id: `node-${start + i}`,
      content: `document ${start + i}`,
      metadata_json: JSON.stringify({ parity: (start + i) % 2 === 0 ? "even" : "odd", n: start + i }),
      embedding: { values: [1, (start + i) / 10, 0.5] },
    }));
  const acks = await ingest([
    { collection, on_conflict: "CONFLICT_POLICY_UPSERT", documents: docs(0, 5) },
    { documents: docs(5, 5) },
  ]);
  const search = await unary(documents, "Search", {
    collection,
    embedding: { values: [1, 0.4, 0.5] },
    top_k: 3,
    filter: { condition: { path: ["parity"], operator: "OPERATOR_EQ", value: { string_value: "even" } } },
    include: { content: true, metadata: true },
  });
  // "document 7" matches only node-7 by its words, which is far from the query vector (nearest: node-4).
  const hybrid = await unary(documents, "Search", {
    collection,
    embedding: { values: [1, 0.4, 0.5] },
    top_k: 3,
    query_text: "document 7",
    hybrid: { mode: "SEARCH_MODE_HYBRID", rrf_k: 60 },
  });
  const updated = await unary(documents, "UpdateMetadata", {
    collection,
    filter: { condition: { field: "DOCUMENT_FIELD_ID", operator: "OPERATOR_IN", value: { list_value: { values: [{ string_value: "node-1" }, { string_value: "node-8" }] } } } },
    metadata_json: JSON.stringify({ seen: "2024-05-01T10:00:00+02:00" }),
  });
  const seenBefore9Utc = await unary(documents, "CountDocuments", {
    collection,
    filter: { condition: { path: ["seen"], operator: "OPERATOR_LT", value: { datetime_value: "2024-05-01T09:00:00Z" } } },
  });
  const values = await unary(documents, "GetFieldValues", { collection, path: ["parity"] });
  const range = await unary(documents, "GetFieldRange", { collection, path: ["n"] });
  let error = null;
  try {
    await unary(documents, "Search", { collection, embedding: { values: [1, 2] }, top_k: 3 });
  } catch (err) {
    error = { code: err.code, details: err.details, hasDetailsTrailer: err.metadata.get("grpc-status-details-bin").length > 0 };
  }
  console.log(
    JSON.stringify({
      created: created.collection.name,
      acks: acks.map((a) => ({ sequence: a.sequence, inserted: a.inserted })),
      hits: search.hits.map((h) => ({ id: h.document.id, content: h.document.content, metadata: JSON.parse(h.document.metadata_json), score: h.score })),
      textSearch: created.collection.text_search,
      hybrid: hybrid.hits.map((h) => ({
        id: h.document.id,
        score: h.score,
        fused: h.fused_score,
        keywordRank: h._keyword_rank ? h.keyword_rank : null,
        vectorScore: h._vector_score ? h.vector_score : null,
      })),
      updated: updated.updated,
      seenBefore9Utc: seenBefore9Utc.count,
      values: { values: values.values_json.map((v) => JSON.parse(v)), total: values.total },
      range: [JSON.parse(range.min_json), JSON.parse(range.max_json)],
      error,
      withoutKey: caFile ? await withoutKey() : undefined,
    }),
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
