{{
    config(
        pre_hook="set work_mem = '256MB'",
        post_hook=[
            "{{ analyze_this(['session_key', 'user_pseudo_id', 'stream_id', 'user_id', 'session_date']) }}",
        ],
    )
}}

with

events as (
    select * from {{ ref('stg_ga4__events') }}
),

sessions as (
    select
        client_key,
        ga_session_id,
        min(user_pseudo_id) as user_pseudo_id,
        min(stream_id) as stream_id,
        -- the shop's customer id once the device logged in (a device logs in as one customer)
        min(user_id) as user_id,
        min(occurred_at) as session_started_at,
        max(occurred_at) as session_ended_at,
        min(ga_session_number) as session_number,
        min(platform) as platform,
        min(device_category) as device_category,
        -- GA4 stamps the session's source/medium on every event of the session
        min(session_source) as session_source,
        min(session_medium) as session_medium,
        min(first_touch_source) as first_touch_source,
        min(first_touch_medium) as first_touch_medium,
        min(first_touch_campaign) as first_touch_campaign,
        count(*) filter (where event_name = 'page_view') as page_views,
        count(*) filter (where event_name = 'view_item') as product_views,
        count(*) filter (where event_name = 'add_to_cart') as add_to_carts,
        count(*) filter (where event_name = 'purchase') as purchases,
        coalesce(sum(purchase_revenue), 0)::numeric(12,2) as purchase_revenue,
        count(*) as events_count
    from events
    where ga_session_id is not null
    group by client_key, ga_session_id
),

final as (
    select
        client_key || ':' || ga_session_id as session_key,
        *,
        session_started_at::date as session_date
    from sessions
)

select * from final
