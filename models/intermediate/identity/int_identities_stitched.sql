{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='node_key',
        on_schema_change='append_new_columns',
        pre_hook=[
            "set work_mem = '256MB'",
            "{{ identity_stitch_scope(this if is_incremental() else none,
                                      ref('int_identity_nodes'), ref('int_identity_edges')) }}",
            "{{ identity_components(
                   'pg_temp.identity_scoped_nodes' if is_incremental() else ref('int_identity_nodes'),
                   'pg_temp.identity_scoped_edges' if is_incremental() else ref('int_identity_edges')) }}",
        ],
        post_hook=[
            "{{ delete_missing_from_this(ref('int_identity_nodes'), 'node_key') if is_incremental() else 'select 1' }}",
            "{{ index_on(['node_key'], unique=true) }}",
            "{{ index_on(['customer_id']) }}",
            "{{ index_on(['source', 'identity_type', 'source_id']) }}",
            "{{ analyze_this() }}",
        ],
    )
}}
{#- One row per identity record with its unified customer_id. The connected components are
    computed by the pre-hooks (macros/identity.sql) into the session temp table
    identity_components; this query attaches ids.

    Incremental: a nightly build re-resolves only the records whose component may have changed
    (identity_stitch_scope: new records, changed links, and everything connected to them now or
    at the previous build) and keeps every other record's customer_id. A full refresh resolves
    every record; both give the same assignment (tests/test_day_after_day.py). -#}

-- depends_on: {{ ref('int_identity_nodes') }}
-- depends_on: {{ ref('int_identity_edges') }}

with

nodes as (
    select * from {{ ref('int_identity_nodes') }}
),

components as (
    select * from pg_temp.identity_components
),

signatures as (
    select * from pg_temp.identity_signatures
),

final as (
    select
        nodes.node_key,
        {{ customer_id_from_node('components.root_node_key') }} as customer_id,
        nodes.source,
        nodes.identity_type,
        nodes.source_id,
        nodes.stream_id,
        components.root_node_key,
        components.cluster_size,
        nodes.first_seen_at,
        -- the record's linking identifiers at this build: a change re-resolves its component
        coalesce(signatures.edge_signature, '') as edge_signature,
        {{ build_barrier() }} as _built_at
    from nodes
    inner join components on components.node_key = nodes.node_key
    left join signatures on signatures.node_key = nodes.node_key
)

select * from final
