{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='session_date',
        on_schema_change='sync_all_columns',
        incremental_predicates=[only_changed_dates('session_date', 'ga4_rebuilt_session_dates')],
        pre_hook=[
            "set work_mem = '256MB'",
            "{{ note_changed_dates('ga4_rebuilt_session_dates',
                   'select event_date from ' ~ ref('stg_ga4__events')
                   ~ ' where ' ~ landed_since_last_build(), shift=(-2, 2)) if is_incremental() else 'select 1' }}",
        ],
        post_hook=[
            "{{ index_on(['session_date'], using='brin') }}",
            "{{ index_on(['_loaded_at'], using='brin') }}",
            "{{ index_on(['user_pseudo_id']) }}",
            "{{ record_build_barrier() }}",
            "{{ analyze_this(['session_key', 'user_pseudo_id', 'stream_id', 'user_id', 'session_date']) }}",
        ],
    )
}}

{#- Incremental by session date. A nightly build finds the event dates that changed (events
    loaded since the newest one this table has seen), then rebuilds every session that starts
    within two days of them from the events around them (a session's start, in the database's
    time zone, and its events' GA4 dates differ by at most a day each way, and a session lasts
    under a day), and replaces those session dates whole. -#}

with

{% if is_incremental() -%}
changed_dates as (
    select distinct event_date from {{ ref('stg_ga4__events') }}
    where {{ landed_since_last_build() }}
),

rebuilt_dates as (
    select distinct changed_dates.event_date + shift as session_date
    from changed_dates
    cross join generate_series(-2, 2) as shift
),

events as (
    select * from {{ ref('stg_ga4__events') }}
    where event_date in (
        select distinct changed_dates.event_date + shift
        from changed_dates
        cross join generate_series(-3, 4) as shift
    )
),
{%- else -%}
events as (
    select * from {{ ref('stg_ga4__events') }}
),
{%- endif %}

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
        count(*) as events_count,
        max(_loaded_at) as _loaded_at
    from events
    where ga_session_id is not null
    group by client_key, ga_session_id
),

final as (
    select
        client_key || ':' || ga_session_id as session_key,
        *,
        session_started_at::date as session_date,
        {{ build_barrier() }} as _built_at
    from sessions
    {% if is_incremental() -%}
    where session_started_at::date in (select session_date from rebuilt_dates)
    {%- endif %}
)

select * from final
