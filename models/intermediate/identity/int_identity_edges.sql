{{
    config(
        post_hook=[
            "{{ analyze_this() }}",
        ],
    )
}}
{#-
    The identifiers that may link records: not on the blocklist (pii.blocked_values), shared by
    at least two records, and by no more than var('identity_max_cluster_per_value') records (a
    value shared by more is junk nobody listed yet: a store's own address, a call-centre phone).
-#}

with

identifiers as (
    select * from {{ ref('int_identity_identifiers') }}
),

blocked_values as (
    select * from {{ ref('stg_pii__blocked_values') }}
),

allowed as (
    select identifiers.*
    from identifiers
    left join blocked_values
        on blocked_values.pii_type = identifiers.identifier_type
        and blocked_values.value_hash = identifiers.identifier_value
    where blocked_values.value_hash is null
),

sharing as (
    select
        *,
        count(*) over (partition by identifier_type, identifier_value) as records_sharing
    from allowed
),

final as (
    select
        node_key,
        identifier_type || ':' || identifier_value as identifier_key,
        identifier_type,
        identifier_value,
        records_sharing
    from sharing
    where records_sharing between 2 and {{ var('identity_max_cluster_per_value') }}
)

select * from final
