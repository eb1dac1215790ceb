{{
    config(
        pre_hook=[
            "set work_mem = '256MB'",
            "{{ identity_components(ref('int_identity_nodes'), ref('int_identity_edges')) }}",
        ],
        post_hook=[
            "{{ index_on(['node_key'], unique=true) }}",
            "{{ index_on(['customer_id']) }}",
            "{{ analyze_this() }}",
        ],
    )
}}
{#- One row per identity record with its unified customer_id. The connected components are
    computed by the pre-hook (macros/identity.sql) into the session temp table
    identity_components; this query attaches ids. -#}

-- depends_on: {{ ref('int_identity_nodes') }}
-- depends_on: {{ ref('int_identity_edges') }}

with

nodes as (
    select * from {{ ref('int_identity_nodes') }}
),

components as (
    select * from pg_temp.identity_components
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
        nodes.first_seen_at
    from nodes
    inner join components on components.node_key = nodes.node_key
)

select * from final
