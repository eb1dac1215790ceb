{{
    config(post_hook=["{{ index_on(['customer_id'], unique=true) }}", "{{ analyze_this(['customer_id']) }}"])
}}
{#- One row per unified customer: ids per source and every rollup, measured at as_of_date. -#}

with

identities as (
    select * from {{ ref('int_identities_stitched') }}
),

shopify_customers as (
    select * from {{ ref('stg_shopify__customers') }}
),

orders as (
    select * from {{ ref('int_customer_orders_rolled_up') }}
),

subscriptions as (
    select * from {{ ref('int_customer_subscriptions_rolled_up') }}
),

email as (
    select * from {{ ref('int_customer_email_rolled_up') }}
),

web as (
    select * from {{ ref('int_customer_web_rolled_up') }}
),

tickets as (
    select * from {{ ref('int_customer_tickets_rolled_up') }}
),

as_of as (
    select * from {{ ref('int_as_of_date') }}
),

ids as (
    select
        customer_id,
        min(root_node_key) as root_node_key,
        min(first_seen_at) as first_seen_at,
        count(*) as identity_records_count,
        string_agg(source_id, ',' order by first_seen_at, source_id)
            filter (where source = 'shopify') as shopify_customer_ids,
        string_agg(source_id, ',' order by first_seen_at, source_id)
            filter (where source = 'klaviyo') as klaviyo_profile_ids,
        string_agg(source_id, ',' order by first_seen_at, source_id)
            filter (where source = 'ga4') as ga4_user_pseudo_ids,
        string_agg(source_id, ',' order by first_seen_at, source_id)
            filter (where source = 'helpdesk') as helpdesk_requester_ids,
        string_agg(source_id, ',' order by first_seen_at, source_id)
            filter (where source = 'subscriptions') as subscription_customer_ids
    from identities
    group by customer_id
),

shopify_consent as (
    select
        identities.customer_id,
        bool_or(shopify_customers.email_marketing_consent = 'subscribed') as is_shopify_subscribed
    from shopify_customers
    inner join identities
        on identities.node_key = 'shopify:customer_id:' || shopify_customers.shopify_customer_id::text
    group by identities.customer_id
),

final as (
    select
        ids.customer_id,
        nullif(split_part(ids.shopify_customer_ids, ',', 1), '') as primary_shopify_customer_id,
        ids.shopify_customer_ids,
        ids.klaviyo_profile_ids,
        ids.ga4_user_pseudo_ids,
        ids.helpdesk_requester_ids,
        ids.subscription_customer_ids,
        ids.identity_records_count,
        ids.root_node_key,
        -- acquisition
        split_part(ids.root_node_key, ':', 1) as first_seen_source,
        coalesce(web.first_touch_channel, case
            when split_part(ids.root_node_key, ':', 1) = 'klaviyo' then 'email'
            else 'unknown'
        end) as acquisition_channel,
        web.first_touch_source,
        web.first_touch_medium,
        web.first_touch_campaign,
        -- orders
        coalesce(orders.orders_count, 0) as orders_count,
        coalesce(orders.subscription_orders_count, 0) as subscription_orders_count,
        coalesce(orders.one_off_orders_count, 0) as one_off_orders_count,
        coalesce(orders.discounted_orders_count, 0) as discounted_orders_count,
        coalesce(orders.refunded_orders_count, 0) as refunded_orders_count,
        coalesce(orders.gross_revenue, 0)::numeric(12,2) as gross_revenue,
        coalesce(orders.refunded_amount, 0)::numeric(12,2) as refunded_amount,
        coalesce(orders.lifetime_value, 0)::numeric(12,2) as lifetime_value,
        orders.average_order_value,
        orders.avg_days_between_orders,
        orders.stddev_days_between_orders,
        coalesce(orders.has_bought_replenishable, false) as has_bought_replenishable,
        coalesce(orders.replenishable_products_rebought, 0) as replenishable_products_rebought,
        orders.replenish_days,
        orders.first_order_id,
        orders.first_order_at,
        orders.last_order_at,
        as_of.as_of_date - orders.first_order_at::date as days_since_first_order,
        as_of.as_of_date - orders.last_order_at::date as days_since_last_order,
        -- subscriptions
        coalesce(subscriptions.subscription_status, 'never') as subscription_status,
        subscriptions.subscription_product,
        subscriptions.subscription_interval_days,
        subscriptions.subscription_charge_amount,
        subscriptions.annual_subscription_value,
        coalesce(subscriptions.subscriptions_count, 0) as subscriptions_count,
        subscriptions.subscription_started_at,
        subscriptions.subscription_paused_at,
        subscriptions.subscription_cancelled_at,
        as_of.as_of_date - subscriptions.subscription_cancelled_at::date
            as days_since_subscription_cancelled,
        subscriptions.cancellation_reason,
        subscriptions.next_charge_at,
        coalesce(subscriptions.skips_90d, 0) as subscription_skips_90d,
        -- email
        coalesce(email.emails_sent_30d, 0) as emails_sent_30d,
        coalesce(email.emails_sent_90d, 0) as emails_sent_90d,
        coalesce(email.email_opens_30d, 0) as email_opens_30d,
        coalesce(email.email_opens_90d, 0) as email_opens_90d,
        coalesce(email.email_clicks_30d, 0) as email_clicks_30d,
        coalesce(email.email_clicks_90d, 0) as email_clicks_90d,
        email.email_open_rate_30d,
        email.email_click_rate_30d,
        email.email_open_rate_90d,
        email.email_click_rate_90d,
        email.email_open_rate_prior_90d,
        email.last_email_opened_at,
        -- web
        coalesce(web.web_sessions_30d, 0) as web_sessions_30d,
        coalesce(web.web_sessions_90d, 0) as web_sessions_90d,
        coalesce(web.web_sessions_prior_90d, 0) as web_sessions_prior_90d,
        coalesce(web.product_views_30d, 0) as product_views_30d,
        coalesce(web.product_views_90d, 0) as product_views_90d,
        coalesce(web.product_views_prior_90d, 0) as product_views_prior_90d,
        web.last_web_session_at,
        -- support
        coalesce(tickets.tickets_30d, 0) as tickets_30d,
        coalesce(tickets.tickets_90d, 0) as tickets_90d,
        coalesce(tickets.tickets_total, 0) as tickets_total,
        coalesce(tickets.open_tickets, 0) as open_tickets,
        tickets.csat_avg,
        tickets.csat_avg_90d,
        tickets.last_ticket_at,
        -- consent: opted in at Shopify or Klaviyo and not unsubscribed since
        coalesce(shopify_consent.is_shopify_subscribed, false)
            or coalesce(email.is_klaviyo_subscribed, false) as has_marketing_consent_raw,
        coalesce(email.has_unsubscribed_event, false) as has_unsubscribed,
        ids.first_seen_at,
        as_of.as_of_date
    from ids
    cross join as_of
    left join orders on orders.customer_id = ids.customer_id
    left join subscriptions on subscriptions.customer_id = ids.customer_id
    left join email on email.customer_id = ids.customer_id
    left join web on web.customer_id = ids.customer_id
    left join tickets on tickets.customer_id = ids.customer_id
    left join shopify_consent on shopify_consent.customer_id = ids.customer_id
)

select * from final
