{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='klaviyo_event_id',
        on_schema_change='sync_all_columns',
        pre_hook="set work_mem = '256MB'",
        post_hook=[
            "{{ index_on(['klaviyo_event_id'], unique=true) }}",
            "{{ index_on(['_loaded_at'], using='brin') }}",
            "{{ index_on(['klaviyo_profile_id']) }}",
            "{{ record_build_barrier() }}",
            "{{ analyze_this(['klaviyo_event_id', 'klaviyo_profile_id', 'event_type', 'occurred_at']) }}",
        ],
    )
}}
{#- A table, not a view (one of the two exceptions in staging, with stg_ga4__events): several
    models read this large event stream and de-duplicating it once is much cheaper than once per
    reader. Incremental (macros/incremental.sql): a nightly build reads only the raw rows landed
    since the last one and replaces those events by id (a new version of an event replaces the
    old). The unique index
    on the id serves those replacements and enforces uniqueness on every write (cheaper than a
    test scanning millions of events each night). Readers join it on
    'klaviyo:profile_id:' || klaviyo_profile_id or scan it, which no index serves. -#}

with

source as (
    select * from {{ source('raw_klaviyo', 'events') }}
    {% if is_incremental() -%}
    where {{ landed_since_last_build() }}
    {%- endif %}
),

latest as (
    select distinct on (id collate "C")
        id,
        profile_id,
        metric_id,
        metric_name,
        campaign_id,
        flow_id,
        value,
        properties::text as properties,
        datetime,
        _loaded_at
    from source
    -- byte-order collation: sorting ids by locale rules is several times slower
    order by id collate "C", _loaded_at desc
),

final as (
    select
        id as klaviyo_event_id,
        profile_id as klaviyo_profile_id,
        metric_id,
        metric_name,
        case metric_name
            when 'Received Email' then 'email_received'
            when 'Opened Email' then 'email_opened'
            when 'Clicked Email' then 'email_clicked'
            when 'Unsubscribed' then 'email_unsubscribed'
            when 'Placed Order' then 'order_placed'
            when 'Viewed Product' then 'product_viewed'
            else lower(regexp_replace(metric_name, '\W+', '_', 'g'))
        end as event_type,
        campaign_id,
        flow_id,
        value::numeric(12,2) as event_value,
        {{ json_text_field('properties::text', 'subject') }} as email_subject,
        {{ json_text_field('properties::text', 'product_name') }} as product_name,
        datetime as occurred_at,
        _loaded_at,
        {{ build_barrier() }} as _built_at
    from latest
)

select * from final
