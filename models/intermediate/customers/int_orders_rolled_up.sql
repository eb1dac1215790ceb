{{
    config(
        post_hook=[
            "{{ index_on(['order_id'], unique=true) }}",
            "{{ index_on(['customer_id', 'ordered_at']) }}",
            "{{ analyze_this(['order_id', 'customer_id', 'ordered_at', 'order_date', 'is_cancelled']) }}",
        ],
    )
}}
{#- One row per (non-test) order with its line items and refunds rolled up and its customer. -#}

with

orders as (
    select * from {{ ref('stg_shopify__orders') }}
),

order_lines as (
    select * from {{ ref('stg_shopify__order_lines') }}
),

refunds as (
    select * from {{ ref('stg_shopify__refunds') }}
),

products as (
    select * from {{ ref('products') }}
),

identities as (
    select * from {{ ref('int_identities_stitched') }}
    where source = 'shopify'
),

lines_rolled_up as (
    select
        order_lines.order_id,
        count(*) as lines_count,
        sum(order_lines.quantity) as items_count,
        sum(order_lines.quantity) filter (where products.is_replenishable) as replenishable_items,
        string_agg(distinct products.category, ', ' order by products.category) as categories,
        min(order_lines.product_id) filter (where products.is_replenishable)
            as first_replenishable_product_id,
        max(order_lines._loaded_at) as _loaded_at
    from order_lines
    left join products on products.product_id = order_lines.product_id
    group by order_lines.order_id
),

refunds_rolled_up as (
    select
        order_id,
        count(*) as refunds_count,
        sum(refund_amount) as refunded_amount,
        min(refunded_at) as first_refunded_at,
        max(_loaded_at) as _loaded_at
    from refunds
    group by order_id
),

joined as (
    select
        orders.order_id,
        identities.customer_id,
        orders.shopify_customer_id,
        orders.order_number,
        orders.financial_status,
        orders.fulfillment_status,
        orders.source_name,
        orders.discount_codes,
        orders.discount_codes is not null or orders.total_discounts > 0 as has_discount,
        orders.is_subscription_order,
        orders.is_cancelled,
        orders.landing_site,
        orders.referring_site,
        coalesce(lines_rolled_up.lines_count, 0) as lines_count,
        coalesce(lines_rolled_up.items_count, 0) as items_count,
        coalesce(lines_rolled_up.replenishable_items, 0) as replenishable_items,
        coalesce(lines_rolled_up.replenishable_items, 0) > 0 as has_replenishable,
        lines_rolled_up.categories,
        orders.subtotal_price,
        orders.total_discounts,
        orders.total_shipping_price,
        orders.total_tax,
        orders.total_price,
        coalesce(refunds_rolled_up.refunds_count, 0) as refunds_count,
        coalesce(refunds_rolled_up.refunded_amount, 0)::numeric(12,2) as refunded_amount,
        -- revenue the order kept: cancelled (voided) orders count nothing
        case
            when orders.is_cancelled then 0
            else orders.total_price - coalesce(refunds_rolled_up.refunded_amount, 0)
        end::numeric(12,2) as net_revenue,
        orders.ordered_at,
        orders.ordered_at::date as order_date,
        orders.cancelled_at,
        refunds_rolled_up.first_refunded_at,
        -- when the newest record behind this row (order version, line, refund) was landed:
        -- incremental models downstream pick up the orders that changed since their last build
        greatest(orders._loaded_at, lines_rolled_up._loaded_at, refunds_rolled_up._loaded_at)
            as _loaded_at
    from orders
    left join lines_rolled_up on lines_rolled_up.order_id = orders.order_id
    left join refunds_rolled_up on refunds_rolled_up.order_id = orders.order_id
    left join identities
        on identities.node_key = 'shopify:customer_id:' || orders.shopify_customer_id::text
),

final as (
    select
        *,
        case when not is_cancelled then
            row_number() over (
                partition by customer_id, is_cancelled order by ordered_at, order_id
            )
        end as customer_order_number
    from joined
)

select * from final
