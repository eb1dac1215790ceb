{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='timeline_event_id',
        on_schema_change='sync_all_columns',
        pre_hook="set work_mem = '256MB'",
        post_hook=[
            "{{ index_on(['timeline_event_id'], unique=true) }}",
            "{{ record_build_barrier() }}",
            "{{ index_on(['customer_id', 'occurred_at']) }}",
            "{{ index_on(['event_type', 'occurred_at']) }}",
            "{{ analyze_this(['timeline_event_id', 'customer_id', 'event_type', 'occurred_at']) }}",
        ],
    )
}}
{#- Every source event of every customer, one row each, with a readable summary: the stored
    part of marts.customer_timeline (which adds segment entries and exits, live).

    timeline_event_id names the source record (source:record:id), not what happened to it, so a
    cancelled order keeps its id and replaces its row.

    Incremental. A nightly build (re)computes only
      - events whose source record was landed since this table's last build
        (`_loaded_at`, carried through staging; macros/incremental.sql: a late refund or cancellation of an old order,
        an updated ticket, the day's new events), and
      - every event of the identity records whose customer_id was assigned or changed since the
        last build of this table (int_identity_changes: merges, splits, records seen for the
        first time whose older events were waiting for them),
    and replaces those rows by timeline_event_id (unique by index: no nightly test scans the
    whole timeline for duplicates). `_node_key` and `_built_at` are for these
    look-ups; the mart does not show them. -#}

-- depends_on: {{ ref('int_identity_changes') }}

with

orders as not materialized (
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

identities as not materialized (
    select * from {{ ref('int_identities_stitched') }}
),

{% if is_incremental() -%}
reassigned as (
    -- recorded by builds after this model's last one (that one read the changes of its own)
    select distinct node_key
    from {{ ref('int_identity_changes') }}
    where _built_at > {{ last_build_barrier() }}
),

reassigned_records as (
    select identities.source, identities.source_id
    from reassigned
    inner join identities on identities.node_key = reassigned.node_key
),
{%- endif %}

unioned as (
    select
        'shopify:order:' || orders.order_id as timeline_event_id,
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
            || coalesce(' · code ' || orders.discount_codes, '') as summary,
        'shopify:customer_id:' || orders.shopify_customer_id as _node_key,
        orders._loaded_at
    from orders
    {{ timeline_source_changed('orders._loaded_at', "'shopify:customer_id:' || orders.shopify_customer_id") }}
        {{ 'and' if is_incremental() else 'where' }} orders.customer_id is not null

    union all

    select
        'shopify:refund:' || refunds.refund_id,
        orders.customer_id,
        refunds.refunded_at,
        'shopify',
        'order_refunded',
        refunds.refund_id::text,
        -refunds.refund_amount,
        'Refunded $' || refunds.refund_amount || ' on order ' || orders.order_number
            || coalesce(' · ' || refunds.note, ''),
        'shopify:customer_id:' || orders.shopify_customer_id,
        -- the refund row names its order: a renumbered or re-assigned order rewrites it too
        greatest(refunds._loaded_at, orders._loaded_at)
    from refunds
    inner join orders on orders.order_id = refunds.order_id
    {{ timeline_source_changed('greatest(refunds._loaded_at, orders._loaded_at)',
               "'shopify:customer_id:' || orders.shopify_customer_id") }}
        {{ 'and' if is_incremental() else 'where' }} orders.customer_id is not null

    union all

    select
        'subscriptions:event:' || subscription_events.subscription_event_id,
        identities.customer_id,
        subscription_events.occurred_at,
        'subscriptions',
        'subscription_' || subscription_events.event_type,
        subscription_events.subscription_event_id::text,
        null::numeric,
        'Subscription ' || replace(subscription_events.event_type, '_', ' ')
            || coalesce(' · ' || replace(subscription_events.reason, '_', ' '), ''),
        identities.node_key,
        subscription_events._loaded_at
    from subscription_events
    inner join identities
        on identities.node_key
            = 'subscriptions:customer_id:' || subscription_events.subscription_customer_id::text
    {{ timeline_source_changed('subscription_events._loaded_at',
               "'subscriptions:customer_id:' || subscription_events.subscription_customer_id") }}

    union all

    select
        'klaviyo:event:' || email_events.klaviyo_event_id,
        identities.customer_id,
        email_events.occurred_at,
        'klaviyo',
        email_events.event_type,
        email_events.klaviyo_event_id,
        email_events.event_value,
        email_events.metric_name
            || coalesce(': ' || email_events.email_subject, '')
            || coalesce(': ' || email_events.product_name, ''),
        identities.node_key,
        email_events._loaded_at
    from email_events
    inner join identities
        on identities.node_key = 'klaviyo:profile_id:' || email_events.klaviyo_profile_id
    {{ timeline_source_changed('email_events._loaded_at',
                                "'klaviyo:profile_id:' || email_events.klaviyo_profile_id",
                                source_id='email_events.klaviyo_profile_id', source='klaviyo') }}

    union all

    select
        'ga4:session:' || sessions.session_key,
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
            || coalesce(' · from ' || sessions.session_source || '/' || sessions.session_medium, ''),
        identities.node_key,
        sessions._loaded_at
    from sessions
    inner join identities
        on identities.node_key = 'ga4:user_pseudo_id:' || sessions.user_pseudo_id
            || ':' || sessions.stream_id
    {{ timeline_source_changed('sessions._loaded_at',
               "'ga4:user_pseudo_id:' || sessions.user_pseudo_id || ':' || sessions.stream_id",
               source_id='sessions.user_pseudo_id', source='ga4') }}

    union all

    select
        'helpdesk:ticket:' || tickets.ticket_id,
        identities.customer_id,
        tickets.created_at,
        'helpdesk',
        'ticket_opened',
        tickets.ticket_id::text,
        null,
        'Ticket #' || tickets.ticket_id || ' (' || coalesce(tickets.category, 'general')
            || ', ' || tickets.ticket_status || ')' || coalesce(': ' || tickets.subject, '')
            || coalesce(' · CSAT ' || tickets.satisfaction_score, ''),
        identities.node_key,
        tickets._loaded_at
    from tickets
    inner join identities
        on identities.node_key = 'helpdesk:requester_id:' || tickets.requester_id::text
    {{ timeline_source_changed('tickets._loaded_at', "'helpdesk:requester_id:' || tickets.requester_id") }}
),

final as (
    select
        timeline_event_id,
        customer_id,
        occurred_at,
        source,
        event_type,
        source_event_id,
        amount::numeric(12,2) as amount,
        summary,
        _node_key,
        _loaded_at,
        {{ build_barrier() }} as _built_at
    from unioned
)

select * from final
