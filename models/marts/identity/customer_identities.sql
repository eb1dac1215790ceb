{{
    config(materialized='view')
}}
{#- A view: the stitched table already holds one row per record with the indexes lookups use
    (node_key, customer_id, source + identity_type + source_id); copying it nightly cost ~4 s at
    scale 10 for nothing. -#}

with

stitched as (
    select * from {{ ref('int_identities_stitched') }}
),

final as (
    select
        node_key,
        customer_id,
        source,
        identity_type,
        source_id,
        stream_id,
        cluster_size,
        node_key = root_node_key as is_cluster_root,
        first_seen_at
    from stitched
)

select * from final
