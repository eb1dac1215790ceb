-- Every raw Shopify customer id maps to exactly one customer_id in marts.customer_identities.
-- Returns the ids that map to none or to several.
with

raw_customers as (
    select distinct shopify_customer_id::text as source_id
    from {{ ref('stg_shopify__customers') }}
),

mapped as (
    select
        source_id,
        count(distinct customer_id) as customer_ids
    from {{ ref('customer_identities') }}
    where source = 'shopify' and identity_type = 'customer_id'
    group by source_id
)

select
    raw_customers.source_id as shopify_customer_id,
    coalesce(mapped.customer_ids, 0) as customer_ids
from raw_customers
left join mapped on mapped.source_id = raw_customers.source_id
where coalesce(mapped.customer_ids, 0) <> 1
