-- The default `documents` collection (1536 dimensions, cosine, HNSW), as in the seed schema.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pgvector_grpc.collections WHERE name = 'documents') THEN
        PERFORM pgvector_grpc.create_collection('documents', 1536, 'cosine', 'hnsw');
    END IF;
END
$$;
