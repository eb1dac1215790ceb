{{
    config(post_hook=["{{ index_on(['order_id'], unique=true) }}", "{{ index_on(['customer_id']) }}"])
}}

with

orders as (
    select * from {{ ref('int_orders_rolled_up') }}
),

final as (
    select
        order_id,
        customer_id,
        shopify_customer_id,
        order_number,
        customer_order_number,
        financial_status,
        fulfillment_status,
        source_name,
        discount_codes,
        categories,
        has_discount,
        has_replenishable,
        is_subscription_order,
        is_cancelled,
        lines_count,
        items_count,
        subtotal_price,
        total_discounts,
        total_shipping_price,
        total_tax,
        total_price,
        refunded_amount,
        net_revenue,
        order_date,
        ordered_at,
        cancelled_at,
        first_refunded_at
    from orders
)

select * from final
