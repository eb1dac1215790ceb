{{
    config(post_hook=["{{ index_on(['metric_date'], unique=true) }}"])
}}
{#- One row per calendar day from the first order to as_of_date. -#}

with

orders as (
    select * from {{ ref('int_orders_rolled_up') }}
    where not is_cancelled
),

subscriptions as (
    select * from {{ ref('stg_subscriptions__subscriptions') }}
),

email_events as (
    select * from {{ ref('stg_klaviyo__events') }}
),

sessions as (
    select * from {{ ref('int_web_sessions_rolled_up') }}
),

as_of as (
    select * from {{ ref('int_as_of_date') }}
),

spine as (
    select generate_series(
        (select min(order_date) from orders),
        (select as_of_date from as_of),
        interval '1 day'
    )::date as metric_date
),

order_days as (
    select
        order_date as metric_date,
        count(*) as orders_count,
        sum(net_revenue)::numeric(12,2) as net_revenue,
        sum(total_price)::numeric(12,2) as gross_revenue,
        count(distinct customer_id) filter (where customer_order_number = 1) as new_customers,
        count(distinct customer_id) filter (where customer_order_number > 1)
            as returning_customers,
        count(*) filter (where is_subscription_order) as subscription_orders
    from orders
    group by order_date
),

subscription_starts as (
    select created_at::date as metric_date, count(*) as started
    from subscriptions
    group by 1
),

subscription_ends as (
    select coalesce(cancelled_at, updated_at)::date as metric_date, count(*) as cancelled
    from subscriptions
    where subscription_status = 'cancelled'
    group by 1
),

email_days as (
    select
        occurred_at::date as metric_date,
        count(*) filter (where event_type = 'email_received') as emails_sent,
        count(*) filter (where event_type = 'email_opened') as email_opens,
        count(*) filter (where event_type = 'email_clicked') as email_clicks
    from email_events
    group by 1
),

web_days as (
    select
        session_date as metric_date,
        count(*) as web_sessions,
        count(distinct client_key) as web_visitors,
        sum(product_views) as product_views
    from sessions
    group by 1
),

final as (
    select
        spine.metric_date,
        coalesce(order_days.orders_count, 0) as orders_count,
        coalesce(order_days.gross_revenue, 0)::numeric(12,2) as gross_revenue,
        coalesce(order_days.net_revenue, 0)::numeric(12,2) as net_revenue,
        coalesce(order_days.new_customers, 0) as new_customers,
        coalesce(order_days.returning_customers, 0) as returning_customers,
        coalesce(order_days.subscription_orders, 0) as subscription_orders,
        -- subscriptions not yet cancelled at the end of the day (paused ones included)
        (sum(coalesce(subscription_starts.started, 0)) over w
            - sum(coalesce(subscription_ends.cancelled, 0)) over w)::integer
            as active_subscribers,
        coalesce(subscription_ends.cancelled, 0) as churned_subscribers,
        coalesce(email_days.emails_sent, 0) as emails_sent,
        coalesce(email_days.email_opens, 0) as email_opens,
        coalesce(email_days.email_clicks, 0) as email_clicks,
        coalesce(web_days.web_sessions, 0) as web_sessions,
        coalesce(web_days.web_visitors, 0) as web_visitors,
        coalesce(web_days.product_views, 0) as product_views
    from spine
    left join order_days on order_days.metric_date = spine.metric_date
    left join subscription_starts on subscription_starts.metric_date = spine.metric_date
    left join subscription_ends on subscription_ends.metric_date = spine.metric_date
    left join email_days on email_days.metric_date = spine.metric_date
    left join web_days on web_days.metric_date = spine.metric_date
    window w as (order by spine.metric_date rows between unbounded preceding and current row)
)

select * from final
