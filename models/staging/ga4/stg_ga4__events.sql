{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='sync_all_columns',
        incremental_predicates=[only_changed_dates('event_date', 'ga4_changed_event_dates')],
        pre_hook=[
            "set work_mem = '256MB'",
            "{{ note_changed_dates('ga4_changed_event_dates',
                   'select event_date from ' ~ source('raw_ga4', 'events')
                   ~ ' where ' ~ landed_since_last_build()) if is_incremental() else 'select 1' }}",
        ],
        post_hook=[
            "{{ index_on(['event_date'], using='brin') }}",
            "{{ index_on(['_loaded_at'], using='brin') }}",
            "{{ record_build_barrier() }}",
            "{{ analyze_this(['client_key', 'ga_session_id', 'event_date', 'event_name']) }}",
        ],
    )
}}
{#- A table, not a view (with stg_klaviyo__events, the exceptions in staging): parsing
    event_params is the costly part of the web models, done once per event here.

    Incremental by event date (macros/incremental.sql): a build re-reads every raw event of each date that received rows
    since the last build and replaces that whole date. A GA4 daily shard replaces its intraday
    shard in raw (some intraday events vanish), so a date is only ever right as a whole; late
    events for an old date re-build just that date. The BRIN index serves the web-session model's
    reads of the dates around the changed ones (rows arrive roughly in date order). -#}

with

source as (
    select * from {{ source('raw_ga4', 'events') }}
    {% if is_incremental() -%}
    where event_date in (
        select distinct event_date from {{ source('raw_ga4', 'events') }}
        where {{ landed_since_last_build() }}
    )
    {%- endif %}
),

params as (
    -- event_params as text once per event (OFFSET 0 keeps PostgreSQL from inlining this step
    -- into the next, which would repeat the json-to-text cast for every reference)
    select
        *,
        event_params::text as params_text
    from source
    offset 0
),

param_rests as (
    -- the text after each wanted parameter's key, found once per parameter (see macros/ga4.sql)
    select
        *,
        {{ ga4_param_rest('params_text', 'ga_session_id', 'int') }} as ga_session_id_rest,
        {{ ga4_param_rest('params_text', 'ga_session_number', 'int') }} as ga_session_number_rest,
        {{ ga4_param_rest('params_text', 'page_location') }} as page_location_rest,
        {{ ga4_param_rest('params_text', 'source') }} as source_rest,
        {{ ga4_param_rest('params_text', 'medium') }} as medium_rest
    from params
    offset 0
),

parsed as (
    select
        -- the de-duplication key in byte-order collation (sorting by locale rules is several
        -- times slower); final restores the database default
        stream_id collate "C" as stream_id,
        user_pseudo_id collate "C" as user_pseudo_id,
        event_timestamp,
        event_name collate "C" as event_name,
        event_date,
        nullif(user_id, '') as user_id,
        {{ ga4_param('ga_session_id_rest', 'params_text', 'ga_session_id', 'int') }}
            as ga_session_id,
        {{ ga4_param('ga_session_number_rest', 'params_text', 'ga_session_number', 'int') }}
            as ga_session_number,
        {{ ga4_param('page_location_rest', 'params_text', 'page_location') }} as page_location,
        {{ ga4_param('source_rest', 'params_text', 'source') }} as session_source,
        {{ ga4_param('medium_rest', 'params_text', 'medium') }} as session_medium,
        platform,
        device_category,
        geo_country,
        traffic_source_source,
        traffic_source_medium,
        traffic_source_name,
        ecommerce_transaction_id,
        ecommerce_purchase_revenue,
        _loaded_at
    from param_rests
),

latest as (
    -- the export has no event id: one event is one stream, device, timestamp and name.
    -- The microsecond timestamp leads the sort: it is nearly unique, so most comparisons end at
    -- one integer (2-3x faster than leading with the stream id every event of a stream shares).
    -- The key columns are plain columns, not expressions, so a filter on them (the client key's
    -- not_null test) is applied before the de-duplication instead of after sorting every event.
    select distinct on (event_timestamp, user_pseudo_id, stream_id, event_name)
        *
    from parsed
    order by
        event_timestamp,
        user_pseudo_id,
        stream_id,
        event_name,
        _loaded_at desc
),

final as (
    select
        -- GA4 client key: a device/browser (user_pseudo_id) within one data stream
        (user_pseudo_id || ':' || stream_id) collate "default" as client_key,
        user_pseudo_id collate "default" as user_pseudo_id,
        stream_id collate "default" as stream_id,
        user_id,
        event_name collate "default" as event_name,
        to_timestamp(event_timestamp::double precision / 1000000) as occurred_at,
        event_date::date as event_date,
        ga_session_id,
        ga_session_number,
        page_location,
        session_source,
        session_medium,
        platform,
        device_category,
        geo_country,
        traffic_source_source as first_touch_source,
        traffic_source_medium as first_touch_medium,
        traffic_source_name as first_touch_campaign,
        ecommerce_transaction_id as transaction_id,
        ecommerce_purchase_revenue::numeric(12,2) as purchase_revenue,
        _loaded_at,
        {{ build_barrier() }} as _built_at
    from latest
)

select * from final
