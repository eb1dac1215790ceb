{{
    config(post_hook=["{{ analyze_this() }}"])
}}
{#- The reporting date every recency metric is measured at: var('as_of_date') when set, else the
    latest day with activity in the data (demo data may end in the past, so not current_date).
    Analyzed: many models cross join this one-row table, and unanalyzed it counts as ~1,300 rows
    in every estimate above it. -#}

with

orders as (
    select max(ordered_at) as latest_at from {{ ref('stg_shopify__orders') }}
),

subscription_events as (
    select max(occurred_at) as latest_at from {{ ref('stg_subscriptions__events') }}
),

tickets as (
    select max(created_at) as latest_at from {{ ref('stg_helpdesk__tickets') }}
),

final as (
    select
        {% if var('as_of_date') %}
        '{{ var("as_of_date") }}'::date as as_of_date,
        {% else %}
        coalesce(
            greatest(
                (select latest_at from orders),
                (select latest_at from subscription_events),
                (select latest_at from tickets)
            )::date,
            current_date
        ) as as_of_date,
        {% endif %}
        {{ "'var'" if var('as_of_date') else "'latest_activity'" }} as as_of_date_source
)

select * from final
