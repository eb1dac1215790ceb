{{
    config(
        post_hook=[
            "{{ index_on(['node_key'], unique=true) }}",
            "{{ index_on(['source', 'identity_type', 'source_id']) }}",
            "{{ index_on(['customer_id']) }}",
        ],
    )
}}

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
