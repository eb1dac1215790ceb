{{
    config(
        post_hook=["{{ analyze_this() }}"],
    )
}}
{#- Every deterministic identifier each identity record carries, before junk filtering. -#}

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

helpdesk_tickets as (
    select * from {{ ref('stg_helpdesk__tickets') }}
),

subscription_customers as (
    select * from {{ ref('stg_subscriptions__customers') }}
),

shopify as (
    select
        {{ identity_node_key("'shopify'", "'customer_id'", 'shopify_customer_id::text') }}
            as node_key,
        email_hash,
        phone_hash,
        shopify_customer_id
    from shopify_customers

    union all

    -- contact details given at checkout belong to the order's customer
    select
        {{ identity_node_key("'shopify'", "'customer_id'", 'shopify_customer_id::text') }},
        email_hash,
        phone_hash,
        shopify_customer_id
    from shopify_orders
    where shopify_customer_id is not null
),

klaviyo as (
    select
        {{ identity_node_key("'klaviyo'", "'profile_id'", 'klaviyo_profile_id') }} as node_key,
        email_hash,
        phone_hash,
        shopify_customer_id
    from klaviyo_profiles
),

ga4_logins as (
    -- a logged-in device carries the shop's customer id as GA4 user_id; one row per device and
    -- id before the pattern test (a regular expression per session costs ten times as much)
    select distinct
        user_pseudo_id,
        stream_id,
        user_id
    from ga4_sessions
    where user_id is not null
),

ga4 as (
    select
        {{ identity_node_key("'ga4'", "'user_pseudo_id'", 'user_pseudo_id', 'stream_id') }}
            as node_key,
        null::text as email_hash,
        null::text as phone_hash,
        user_id::bigint as shopify_customer_id
    from ga4_logins
    where user_id ~ '^[0-9]{1,18}$'
),

helpdesk as (
    select
        {{ identity_node_key("'helpdesk'", "'requester_id'", 'requester_id::text') }} as node_key,
        email_hash,
        phone_hash,
        shopify_customer_id
    from helpdesk_requesters

    union all

    -- the requester's email as recorded on a ticket
    select
        {{ identity_node_key("'helpdesk'", "'requester_id'", 'requester_id::text') }},
        email_hash,
        null,
        null
    from helpdesk_tickets
),

subscriptions as (
    select
        {{ identity_node_key("'subscriptions'", "'customer_id'", 'subscription_customer_id::text') }}
            as node_key,
        email_hash,
        null::text as phone_hash,
        shopify_customer_id
    from subscription_customers
),

records as (
    select * from shopify
    union all
    select * from klaviyo
    union all
    select * from ga4
    union all
    select * from helpdesk
    union all
    select * from subscriptions
),

unpivoted as (
    select node_key, 'email' as identifier_type, email_hash as identifier_value
    from records
    where email_hash is not null
    union all
    select node_key, 'phone', phone_hash
    from records
    where phone_hash is not null
    union all
    select node_key, 'shopify_customer_id', shopify_customer_id::text
    from records
    where shopify_customer_id is not null
),

final as (
    select distinct
        node_key,
        identifier_type,
        identifier_value
    from unpivoted
    where identifier_value <> ''
)

select * from final
