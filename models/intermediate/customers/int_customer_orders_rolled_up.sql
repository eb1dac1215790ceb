{{
    config(post_hook=["{{ index_on(['customer_id'], unique=true) }}", "{{ analyze_this(['customer_id']) }}"])
}}

with

orders as (
    select * from {{ ref('int_orders_rolled_up') }}
    where customer_id is not null
        and not is_cancelled
),

order_lines as (
    select * from {{ ref('stg_shopify__order_lines') }}
),

products as (
    select * from {{ ref('products') }}
),

with_gaps as (
    select
        *,
        extract(epoch from ordered_at - lag(ordered_at) over (
            partition by customer_id order by ordered_at, order_id
        )) / 86400.0 as days_since_previous_order
    from orders
),

-- a replenishable product bought in two or more separate orders (outside any subscription):
-- the customer already re-buys on a cadence
replenishable_repeats as (
    select
        orders.customer_id,
        max(products.replenish_days) as replenish_days
    from orders
    inner join order_lines on order_lines.order_id = orders.order_id
    inner join products on products.product_id = order_lines.product_id
    where products.is_replenishable
        and not orders.is_subscription_order
    group by orders.customer_id, products.product_id
    having count(distinct orders.order_id) >= 2
),

repeat_per_customer as (
    select
        customer_id,
        count(*) as replenishable_products_rebought,
        min(replenish_days) as replenish_days
    from replenishable_repeats
    group by customer_id
),

final as (
    select
        with_gaps.customer_id,
        count(*) as orders_count,
        count(*) filter (where is_subscription_order) as subscription_orders_count,
        count(*) filter (where not is_subscription_order) as one_off_orders_count,
        count(*) filter (where has_discount) as discounted_orders_count,
        count(*) filter (where refunds_count > 0) as refunded_orders_count,
        sum(total_price)::numeric(12,2) as gross_revenue,
        sum(refunded_amount)::numeric(12,2) as refunded_amount,
        sum(net_revenue)::numeric(12,2) as lifetime_value,
        round(avg(total_price), 2)::numeric(12,2) as average_order_value,
        round(avg(days_since_previous_order)::numeric, 1) as avg_days_between_orders,
        round(stddev_samp(days_since_previous_order)::numeric, 1) as stddev_days_between_orders,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        (array_agg(order_id order by ordered_at, order_id))[1] as first_order_id,
        bool_or(has_replenishable) as has_bought_replenishable,
        coalesce(max(repeat_per_customer.replenishable_products_rebought), 0)
            as replenishable_products_rebought,
        min(repeat_per_customer.replenish_days) as replenish_days
    from with_gaps
    left join repeat_per_customer on repeat_per_customer.customer_id = with_gaps.customer_id
    group by with_gaps.customer_id
)

select * from final
