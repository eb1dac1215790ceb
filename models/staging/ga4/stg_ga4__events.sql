with

source as (
    select * from {{ source('raw_ga4', 'events') }}
),

parsed as (
    select
        stream_id,
        user_pseudo_id,
        event_timestamp,
        event_name,
        event_date,
        nullif(user_id, '') as user_id,
        {{ ga4_param('event_params::text', 'ga_session_id', 'int') }} as ga_session_id,
        {{ ga4_param('event_params::text', 'ga_session_number', 'int') }} as ga_session_number,
        {{ ga4_param('event_params::text', 'page_location') }} as page_location,
        {{ ga4_param('event_params::text', 'source') }} as session_source,
        {{ ga4_param('event_params::text', 'medium') }} as session_medium,
        platform,
        device_category,
        geo_country,
        traffic_source_source,
        traffic_source_medium,
        traffic_source_name,
        ecommerce_transaction_id,
        ecommerce_purchase_revenue,
        _loaded_at
    from source
),

latest as (
    -- the export has no event id: one event is one stream, device, timestamp and name
    -- (byte-order collation: sorting by locale rules is several times slower)
    select distinct on (
        stream_id collate "C", user_pseudo_id collate "C", event_timestamp, event_name collate "C"
    )
        *
    from parsed
    order by
        stream_id collate "C",
        user_pseudo_id collate "C",
        event_timestamp,
        event_name collate "C",
        _loaded_at desc
),

final as (
    select
        -- GA4 client key: a device/browser (user_pseudo_id) within one data stream
        user_pseudo_id || ':' || stream_id as client_key,
        user_pseudo_id,
        stream_id,
        user_id,
        event_name,
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
        ecommerce_purchase_revenue::numeric(12,2) as purchase_revenue
    from latest
)

select * from final
