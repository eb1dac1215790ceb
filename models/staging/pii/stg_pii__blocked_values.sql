with

source as (
    select * from {{ source('pii', 'blocked_values') }}
),

final as (
    select distinct
        pii_type,
        value_hash,
        rule as blocklist_rule
    from source
)

select * from final
