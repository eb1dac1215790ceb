{{
    config(
        pre_hook="set work_mem = '256MB'",
        post_hook=[
            "{{ index_on(['customer_id', 'occurred_at']) }}",
            "{{ index_on(['event_type', 'occurred_at']) }}",
            "{{ analyze_this(['timeline_event_id', 'customer_id', 'event_type', 'occurred_at']) }}",
        ],
    )
}}
{#- Every event of every customer from every source, one row each, with a readable summary.
    Web activity appears as sessions (not raw hits); segment entries/exits come from
    segments.membership_changes once segments run. -#}

with

orders as (
    select * from {{ ref('int_orders_rolled_up') }}
),

refunds as (
    select * from {{ ref('stg_shopify__refunds') }}
),

subscription_events as (
    select * from {{ ref('stg_subscriptions__events') }}
),

email_events as (
    select * from {{ ref('stg_klaviyo__events') }}
),

sessions as (
    select * from {{ ref('int_web_sessions_rolled_up') }}
),

tickets as (
    select * from {{ ref('stg_helpdesk__tickets') }}
),

segment_changes as (
    select * from {{ ref('stg_segments__membership_changes') }}
),

identities as (
    select * from {{ ref('int_identities_stitched') }}
),

unioned as (
    select
        orders.customer_id,
        orders.ordered_at as occurred_at,
        'shopify' as source,
        case when orders.is_cancelled then 'order_cancelled' else 'order_placed' end
            as event_type,
        orders.order_id::text as source_event_id,
        orders.total_price as amount,
        case when orders.is_cancelled then 'Cancelled order ' else 'Placed order ' end
            || orders.order_number || ' · $' || orders.total_price || ' · '
            || orders.items_count || ' item(s)'
            || case when orders.is_subscription_order then ' (subscription)' else '' end
            || coalesce(' · code ' || orders.discount_codes, '') as summary
    from orders
    where orders.customer_id is not null

    union all

    select
        orders.customer_id,
        refunds.refunded_at,
        'shopify',
        'order_refunded',
        refunds.refund_id::text,
        -refunds.refund_amount,
        'Refunded $' || refunds.refund_amount || ' on order ' || orders.order_number
            || coalesce(' · ' || refunds.note, '')
    from refunds
    inner join orders on orders.order_id = refunds.order_id
    where orders.customer_id is not null

    union all

    select
        identities.customer_id,
        subscription_events.occurred_at,
        'subscriptions',
        'subscription_' || subscription_events.event_type,
        subscription_events.subscription_event_id::text,
        null::numeric,
        'Subscription ' || replace(subscription_events.event_type, '_', ' ')
            || coalesce(' · ' || replace(subscription_events.reason, '_', ' '), '')
    from subscription_events
    inner join identities
        on identities.node_key
            = 'subscriptions:customer_id:' || subscription_events.subscription_customer_id::text

    union all

    select
        identities.customer_id,
        email_events.occurred_at,
        'klaviyo',
        email_events.event_type,
        email_events.klaviyo_event_id,
        email_events.event_value,
        email_events.metric_name
            || coalesce(': ' || email_events.email_subject, '')
            || coalesce(': ' || email_events.product_name, '')
    from email_events
    inner join identities
        on identities.node_key = 'klaviyo:profile_id:' || email_events.klaviyo_profile_id

    union all

    select
        identities.customer_id,
        sessions.session_started_at,
        'ga4',
        'web_session',
        sessions.session_key,
        nullif(sessions.purchase_revenue, 0),
        'Web session on ' || coalesce(lower(sessions.device_category), 'unknown device')
            || ' · ' || sessions.page_views || ' page view(s), '
            || sessions.product_views || ' product view(s)'
            || case when sessions.purchases > 0 then ' · purchased' else '' end
            || coalesce(' · from ' || sessions.session_source || '/' || sessions.session_medium, '')
    from sessions
    inner join identities
        on identities.node_key = 'ga4:user_pseudo_id:' || sessions.user_pseudo_id
            || ':' || sessions.stream_id

    union all

    select
        identities.customer_id,
        tickets.created_at,
        'helpdesk',
        'ticket_opened',
        tickets.ticket_id::text,
        null,
        'Ticket #' || tickets.ticket_id || ' (' || coalesce(tickets.category, 'general')
            || ', ' || tickets.ticket_status || ')' || coalesce(': ' || tickets.subject, '')
            || coalesce(' · CSAT ' || tickets.satisfaction_score, '')
    from tickets
    inner join identities
        on identities.node_key = 'helpdesk:requester_id:' || tickets.requester_id::text

    union all

    select
        customer_id,
        changed_at,
        'segments',
        'segment_' || change,
        segment || ':' || change || ':' || changed_at::text,
        null,
        case when change in ('entered', 'enter') then 'Entered segment ' else 'Exited segment ' end
            || segment
    from segment_changes
),

final as (
    select
        source || ':' || event_type || ':' || source_event_id as timeline_event_id,
        customer_id,
        occurred_at,
        source,
        event_type,
        source_event_id,
        amount::numeric(12,2) as amount,
        summary
    from unioned
)

select * from final
