{{
    config(
        post_hook=[
            "{{ index_on(['customer_id'], unique=true) }}",
            "{{ index_on(['lifecycle_stage']) }}",
            "{{ analyze_this(['customer_id', 'lifecycle_stage', 'subscription_status']) }}",
        ],
    )
}}

with

joined as (
    select * from {{ ref('int_customers_joined') }}
),

expected as (
    select
        *,
        subscription_status in ('active', 'paused') as is_subscriber,
        -- the cadence we expect this customer to re-order at
        round(coalesce(
            case when subscription_status in ('active', 'paused')
                then subscription_interval_days end,
            avg_days_between_orders,
            replenish_days
        )::numeric, 1) as expected_days_between_orders
    from joined
),

staged as (
    select
        *,
        case
            when orders_count = 0 and subscription_status = 'never' then 'prospect'
            when subscription_status = 'cancelled'
                and (last_order_at is null or last_order_at <= subscription_cancelled_at
                    + interval '1 day')
                then 'churned'
            when days_since_last_order > 365 and not is_subscriber then 'churned'
            when is_subscriber
                and days_since_last_order > 1.25 * expected_days_between_orders
                then 'at_risk'
            when not is_subscriber and orders_count >= 2
                and days_since_last_order > 2 * expected_days_between_orders
                and days_since_last_order <= 180
                then 'at_risk'
            when days_since_first_order < 60 then 'new'
            when is_subscriber or days_since_last_order <= 180 then 'active'
            else 'lapsed'
        end as lifecycle_stage
    from expected
),

final as (
    select
        customer_id,
        primary_shopify_customer_id,
        shopify_customer_ids,
        klaviyo_profile_ids,
        ga4_user_pseudo_ids,
        helpdesk_requester_ids,
        subscription_customer_ids,
        identity_records_count,
        lifecycle_stage,
        acquisition_channel,
        first_touch_source,
        first_touch_medium,
        first_touch_campaign,
        first_seen_source,
        orders_count,
        subscription_orders_count,
        one_off_orders_count,
        gross_revenue,
        refunded_amount,
        lifetime_value,
        average_order_value,
        avg_days_between_orders,
        expected_days_between_orders,
        days_since_first_order,
        days_since_last_order,
        {{ ratio('days_since_last_order', 'expected_days_between_orders', 2) }}
            as order_overdue_ratio,
        {{ ratio('discounted_orders_count', 'orders_count') }} as discount_order_share,
        {{ ratio('refunded_amount', 'gross_revenue') }} as refund_share,
        is_subscriber,
        subscription_status,
        subscription_product,
        subscription_interval_days,
        subscription_charge_amount,
        annual_subscription_value,
        subscriptions_count,
        subscription_skips_90d,
        cancellation_reason,
        days_since_subscription_cancelled,
        orders_count > 0 as is_buyer,
        orders_count >= 2 as is_repeat_buyer,
        has_bought_replenishable,
        replenishable_products_rebought > 0 as has_replenishable_repeat,
        -- behaviour that says "would subscribe": re-buys a replenishable product, not subscribed
        replenishable_products_rebought > 0 and subscription_status = 'never'
            as is_prime_for_subscription,
        emails_sent_30d,
        emails_sent_90d,
        email_opens_30d,
        email_opens_90d,
        email_clicks_30d,
        email_clicks_90d,
        email_open_rate_30d,
        email_click_rate_30d,
        email_open_rate_90d,
        email_click_rate_90d,
        {{ trend('email_open_rate_90d', 'email_open_rate_prior_90d') }} as email_engagement_trend,
        web_sessions_30d,
        web_sessions_90d,
        product_views_30d,
        product_views_90d,
        {{ trend('web_sessions_90d', 'web_sessions_prior_90d') }} as web_engagement_trend,
        tickets_30d,
        tickets_90d,
        tickets_total,
        open_tickets,
        csat_avg,
        csat_avg_90d,
        has_marketing_consent_raw and not has_unsubscribed as has_marketing_consent,
        has_unsubscribed as has_unsubscribed_email,
        first_seen_at,
        first_order_at,
        last_order_at,
        subscription_started_at,
        subscription_paused_at,
        subscription_cancelled_at,
        next_charge_at,
        last_email_opened_at,
        last_web_session_at,
        last_ticket_at,
        as_of_date
    from staged
)

select * from final
