{{
    config(post_hook=["{{ index_on(['customer_id'], unique=true) }}"])
}}
{#- Web engagement per customer (GA4 sessions of every device in the cluster) and first touch. -#}

with

sessions as (
    select * from {{ ref('int_web_sessions_rolled_up') }}
),

identities as (
    select * from {{ ref('int_identities_stitched') }}
    where source = 'ga4'
),

channel_mapping as (
    select * from {{ ref('channel_mapping') }}
),

as_of as (
    select * from {{ ref('int_as_of_date') }}
),

with_customer as (
    select
        identities.customer_id,
        sessions.*,
        as_of.as_of_date - sessions.session_date as days_ago
    from sessions
    inner join identities
        on identities.node_key = 'ga4:user_pseudo_id:' || sessions.user_pseudo_id
            || ':' || sessions.stream_id
    cross join as_of
    where sessions.session_date <= as_of.as_of_date
),

first_touch as (
    -- customers in byte order: the same groups, sorted several times faster than by locale
    select distinct on (customer_id collate "C")
        customer_id,
        first_touch_source,
        first_touch_medium,
        first_touch_campaign,
        session_started_at as first_seen_on_web_at
    from with_customer
    order by customer_id collate "C", session_started_at, session_key
),

devices as (
    -- distinct devices by hashing (count(distinct ...) would sort every session by customer)
    select
        customer_id,
        count(*) as web_devices_count
    from (
        select distinct
            customer_id,
            client_key
        from with_customer
    ) as customer_devices
    group by customer_id
),

rolled_up as (
    select
        customer_id,
        count(*) filter (where days_ago < 30) as web_sessions_30d,
        count(*) filter (where days_ago < 90) as web_sessions_90d,
        count(*) filter (where days_ago between 90 and 179) as web_sessions_prior_90d,
        coalesce(sum(product_views) filter (where days_ago < 30), 0) as product_views_30d,
        coalesce(sum(product_views) filter (where days_ago < 90), 0) as product_views_90d,
        coalesce(sum(product_views) filter (where days_ago between 90 and 179), 0)
            as product_views_prior_90d,
        count(*) as web_sessions_total,
        max(session_started_at) as last_web_session_at
    from with_customer
    group by customer_id
),

final as (
    select
        rolled_up.customer_id,
        rolled_up.web_sessions_30d,
        rolled_up.web_sessions_90d,
        rolled_up.web_sessions_prior_90d,
        rolled_up.product_views_30d,
        rolled_up.product_views_90d,
        rolled_up.product_views_prior_90d,
        rolled_up.web_sessions_total,
        devices.web_devices_count,
        rolled_up.last_web_session_at,
        first_touch.first_touch_source,
        first_touch.first_touch_medium,
        first_touch.first_touch_campaign,
        coalesce(channel_mapping.channel, 'other') as first_touch_channel,
        first_touch.first_seen_on_web_at
    from rolled_up
    inner join first_touch on first_touch.customer_id = rolled_up.customer_id
    inner join devices on devices.customer_id = rolled_up.customer_id
    left join channel_mapping
        on channel_mapping.source = first_touch.first_touch_source
        and channel_mapping.medium = first_touch.first_touch_medium
)

select * from final
