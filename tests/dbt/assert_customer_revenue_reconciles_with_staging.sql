-- Net revenue in marts.customers equals net revenue of the staged (non-test, non-cancelled)
-- orders that belong to a customer, to the cent. Returns the mismatch when it does not.
with

mart as (
    select coalesce(sum(lifetime_value), 0) as revenue from {{ ref('customers') }}
),

refunds as (
    select order_id, sum(refund_amount) as refunded
    from {{ ref('stg_shopify__refunds') }}
    group by order_id
),

staging as (
    select coalesce(sum(orders.total_price - coalesce(refunds.refunded, 0)), 0) as revenue
    from {{ ref('stg_shopify__orders') }} as orders
    left join refunds on refunds.order_id = orders.order_id
    where not orders.is_cancelled
        and orders.shopify_customer_id is not null
)

select
    mart.revenue as mart_revenue,
    staging.revenue as staging_revenue,
    mart.revenue - staging.revenue as difference
from mart
cross join staging
where abs(mart.revenue - staging.revenue) >= 0.01
