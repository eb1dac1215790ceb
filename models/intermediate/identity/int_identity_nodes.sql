{{
    config(
        post_hook=[
            "{{ index_on(['node_key'], unique=true) }}",
            "{{ analyze_this() }}",
        ],
    )
}}

with

shopify_customers as (
    select * from {{ ref('stg_shopify__customers') }}
),

shopify_orders as (
    select * from {{ ref('stg_shopify__orders') }}
),

klaviyo_profiles as (
    select * from {{ ref('stg_klaviyo__profiles') }}
),

ga4_sessions as (
    select * from {{ ref('int_web_sessions_rolled_up') }}
),

helpdesk_requesters as (
    select * from {{ ref('stg_helpdesk__requesters') }}
),

subscription_customers as (
    select * from {{ ref('stg_subscriptions__customers') }}
),

unioned as (
    select
        'shopify' as source,
        'customer_id' as identity_type,
        shopify_customer_id::text as source_id,
        null::text as stream_id,
        created_at as first_seen_at
    from shopify_customers

    union all

    -- a customer id seen on an order before (or without) its customer record
    select
        'shopify',
        'customer_id',
        shopify_customer_id::text,
        null,
        min(ordered_at)
    from shopify_orders
    where shopify_customer_id is not null
    group by shopify_customer_id

    union all

    select
        'klaviyo',
        'profile_id',
        klaviyo_profile_id,
        null,
        created_at
    from klaviyo_profiles

    union all

    select
        'ga4',
        'user_pseudo_id',
        user_pseudo_id,
        stream_id,
        min(session_started_at)
    from ga4_sessions
    group by user_pseudo_id, stream_id

    union all

    select
        'helpdesk',
        'requester_id',
        requester_id::text,
        null,
        created_at
    from helpdesk_requesters

    union all

    select
        'subscriptions',
        'customer_id',
        subscription_customer_id::text,
        null,
        created_at
    from subscription_customers
),

final as (
    select
        {{ identity_node_key('source', 'identity_type', 'source_id', 'stream_id') }} as node_key,
        source,
        identity_type,
        source_id,
        stream_id,
        min(first_seen_at) as first_seen_at
    from unioned
    group by source, identity_type, source_id, stream_id
)

select * from final
