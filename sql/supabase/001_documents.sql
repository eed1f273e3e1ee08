-- Per-user documents on Supabase, isolated by row-level security on auth.uid().
-- Not applied by the server (it applies only sql/*.sql): run it in the SQL editor or copy it into
-- supabase/migrations/. Idempotent. The columns follow this project's collections: id is text
-- (ids from Chroma / Haystack are arbitrary strings) and unique per user, so two users may hold
-- the same ids.
--
-- Clients (supabase-js / supabase-py, PostgREST) call it with the user's JWT:
--   supabase.rpc('match_documents', { query_embedding, match_threshold: 0.78, match_count: 10 })
-- PostgREST runs each request in a transaction as role `authenticated` with the JWT's claims in
-- request.jwt.claims (set with is_local = true), so auth.uid() is the caller and nothing leaks
-- across its pooled connections. The service_role key bypasses RLS: never give it to a client.
create extension if not exists vector with schema extensions;

create table if not exists public.documents (
    user_id         uuid not null default auth.uid() references auth.users (id) on delete cascade,
    id              text collate "C" not null check (char_length(id) between 1 and 512),
    content         text,
    metadata        jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    embedding       extensions.vector(1536),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    primary key (user_id, id)
);

create index if not exists documents_embedding_idx
    on public.documents using hnsw (embedding extensions.vector_cosine_ops);
create index if not exists documents_metadata_idx on public.documents using gin (metadata jsonb_path_ops);

-- FORCE: the table owner is held to the policies too.
alter table public.documents enable row level security;
alter table public.documents force row level security;

-- (select auth.uid()): evaluated once per statement (an initPlan), not once per row.
drop policy if exists "Users read their own documents" on public.documents;
create policy "Users read their own documents" on public.documents
    for select to authenticated using ((select auth.uid()) = user_id);
drop policy if exists "Users insert their own documents" on public.documents;
create policy "Users insert their own documents" on public.documents
    for insert to authenticated with check ((select auth.uid()) = user_id);
drop policy if exists "Users update their own documents" on public.documents;
create policy "Users update their own documents" on public.documents
    for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
drop policy if exists "Users delete their own documents" on public.documents;
create policy "Users delete their own documents" on public.documents
    for delete to authenticated using ((select auth.uid()) = user_id);

-- Supabase grants every privilege on new public tables to anon and authenticated; policies alone
-- do not stop TRUNCATE (which ignores row-level security). Signed-in users get rows only.
revoke all on table public.documents from anon, authenticated;
grant select, insert, update, delete on table public.documents to authenticated;

-- match_documents in Supabase's documented form (query_embedding, match_threshold, match_count),
-- extended with this project's user_id (an explicit filter matching the policy: another user's id
-- finds nothing) and a metadata containment filter. SECURITY INVOKER: row-level security applies,
-- so a user only ever matches their own documents. The ORDER BY is the distance operator so the
-- HNSW index is used; the iterative scan keeps returning match_count rows although the policy
-- filters after the index (pgvector >= 0.8).
create or replace function public.match_documents(
    query_embedding extensions.vector(1536),
    match_threshold float,
    match_count int,
    user_id uuid default null,
    filter jsonb default '{}')
returns table (id text, content text, metadata jsonb, similarity float)
language sql stable security invoker
set search_path = ''
set hnsw.iterative_scan = strict_order
as $$
    select d.id, d.content, d.metadata,
           1 - (d.embedding operator(extensions.<=>) query_embedding) as similarity
    from public.documents d
    where (match_documents.user_id is null or d.user_id = match_documents.user_id)
      and d.metadata @> filter
      and d.embedding operator(extensions.<=>) query_embedding < 1 - match_threshold
    order by d.embedding operator(extensions.<=>) query_embedding
    limit least(match_count, 200);
$$;

revoke execute on function public.match_documents(extensions.vector, float, int, uuid, jsonb) from public, anon;
grant execute on function public.match_documents(extensions.vector, float, int, uuid, jsonb) to authenticated;
