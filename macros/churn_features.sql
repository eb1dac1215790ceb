{#-
    The churn feature SQL for one cutoff date, using only events strictly before the cutoff
    (`cutoff`: a SQL date expression, e.g. "'2026-05-01'::date"). marts.churn_features renders it
    for var('churn_cutoff_date') (default: the day after as_of_date, i.e. everything loaded).

    Python renders the same SQL for other cutoffs (training snapshots) without touching the
    table:  dbt compile --inline "{{ churn_features_sql(\"'2026-05-01'::date\") }}"
    (see orchestration/warehouse/features.py: churn_features_sql(cutoff)).

    One row per customer first seen before the cutoff: buyers (is_buyer) and prospects.
    Customer clusters are today's identity resolution (identity links are not behaviour).
-#}
{% macro churn_features_sql(cutoff) %}
with

cutoff as (
    select {{ cutoff }} as cutoff_date
),

identities as (
    select * from {{ ref('int_identities_stitched') }}
),

customers as (
    select identities.customer_id, min(identities.first_seen_at) as first_seen_at
    from identities
    group by identities.customer_id
    having min(identities.first_seen_at) < (select cutoff_date from cutoff)
),

orders as (
    select
        o.*,
        c.cutoff_date - o.order_date as days_before,
        -- refunds known at the cutoff only
        case when o.first_refunded_at < c.cutoff_date then o.refunded_amount else 0 end
            as known_refund
    from {{ ref('int_orders_rolled_up') }} as o
    cross join cutoff as c
    where o.ordered_at < c.cutoff_date
        and not (o.is_cancelled and o.cancelled_at < c.cutoff_date)
        and o.customer_id is not null
),

order_gaps as (
    select
        customer_id,
        extract(epoch from ordered_at - lag(ordered_at) over (
            partition by customer_id order by ordered_at, order_id
        )) / 86400.0 as gap_days
    from orders
),

order_features as (
    select
        orders.customer_id,
        count(*) as orders_count,
        count(*) filter (where days_before <= 90) as orders_90d,
        count(*) filter (where days_before between 91 and 180) as orders_prior_90d,
        count(*) filter (where days_before <= 365) as orders_365d,
        sum(total_price - known_refund) as monetary_value,
        sum(total_price - known_refund) filter (where days_before <= 365) as monetary_365d,
        avg(total_price) as average_order_value,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        avg(case when has_discount then 1.0 else 0.0 end) as discount_order_share,
        sum(known_refund) / nullif(sum(total_price), 0) as refund_share,
        avg(case when is_subscription_order then 1.0 else 0.0 end) as subscription_order_share
    from orders
    group by orders.customer_id
),

gap_features as (
    select
        customer_id,
        avg(gap_days) as avg_days_between_orders,
        stddev_samp(gap_days) as stddev_days_between_orders
    from order_gaps
    where gap_days is not null
    group by customer_id
),

subscription_events as (
    select
        identities.customer_id,
        e.*,
        c.cutoff_date - e.occurred_at::date as days_before
    from {{ ref('stg_subscriptions__events') }} as e
    inner join identities
        on identities.node_key = 'subscriptions:customer_id:' || e.subscription_customer_id::text
    cross join cutoff as c
    where e.occurred_at < c.cutoff_date
),

subscription_state as (
    -- each subscription's state at the cutoff is set by its latest event before it
    select distinct on (subscription_id)
        customer_id,
        subscription_id,
        case event_type
            when 'paused' then 'paused'
            when 'cancelled' then 'cancelled'
            else 'active'
        end as state
    from subscription_events
    where event_type in ('created', 'resumed', 'charge_processed', 'skipped', 'paused', 'cancelled')
    order by subscription_id, occurred_at desc, subscription_event_id desc
),

subscription_event_counts as (
    select
        customer_id,
        count(*) filter (where event_type = 'skipped' and days_before <= 90) as skips_90d,
        count(*) filter (where event_type = 'paused') as pauses_total
    from subscription_events
    group by customer_id
),

subscription_features as (
    select
        s.customer_id,
        case
            when bool_or(s.state = 'active') then 'active'
            when bool_or(s.state = 'paused') then 'paused'
            else 'cancelled'
        end as subscription_status_at_cutoff,
        max(sub.interval_days) as subscription_interval_days,
        max(counts.skips_90d) as skips_90d,
        max(counts.pauses_total) as pauses_total
    from subscription_state as s
    left join {{ ref('stg_subscriptions__subscriptions') }} as sub
        on sub.subscription_id = s.subscription_id
    left join subscription_event_counts as counts on counts.customer_id = s.customer_id
    group by s.customer_id
),

email_profiles as (
    -- rolled up per Klaviyo profile first, then per customer (email_features): joining each
    -- profile's totals to the identity graph instead of each event saves a key per event
    select
        e.klaviyo_profile_id,
        count(*) filter (where e.event_type = 'email_received' and d <= 30) as emails_sent_30d,
        count(*) filter (where e.event_type = 'email_received' and d <= 90) as emails_sent_90d,
        count(*) filter (where e.event_type = 'email_opened' and d <= 30) as email_opens_30d,
        count(*) filter (where e.event_type = 'email_opened' and d <= 90) as email_opens_90d,
        count(*) filter (where e.event_type = 'email_opened' and d between 91 and 180)
            as email_opens_prior_90d,
        count(*) filter (where e.event_type = 'email_clicked' and d <= 30) as email_clicks_30d,
        count(*) filter (where e.event_type = 'email_clicked' and d <= 90) as email_clicks_90d,
        count(*) filter (where e.event_type = 'email_clicked' and d between 91 and 180)
            as email_clicks_prior_90d,
        bool_or(e.event_type = 'email_unsubscribed') as has_unsubscribed
    from (
        select ev.*, c.cutoff_date - ev.occurred_at::date as d
        from {{ ref('stg_klaviyo__events') }} as ev
        cross join cutoff as c
        where ev.occurred_at < c.cutoff_date
            and ev.occurred_at >= c.cutoff_date - 181
            or (ev.event_type = 'email_unsubscribed' and ev.occurred_at < c.cutoff_date)
    ) as e
    group by e.klaviyo_profile_id
),

email_features as (
    select
        identities.customer_id,
        sum(p.emails_sent_30d)::bigint as emails_sent_30d,
        sum(p.emails_sent_90d)::bigint as emails_sent_90d,
        sum(p.email_opens_30d)::bigint as email_opens_30d,
        sum(p.email_opens_90d)::bigint as email_opens_90d,
        sum(p.email_opens_prior_90d)::bigint as email_opens_prior_90d,
        sum(p.email_clicks_30d)::bigint as email_clicks_30d,
        sum(p.email_clicks_90d)::bigint as email_clicks_90d,
        sum(p.email_clicks_prior_90d)::bigint as email_clicks_prior_90d,
        bool_or(p.has_unsubscribed) as has_unsubscribed
    from email_profiles as p
    inner join identities
        on identities.node_key = 'klaviyo:profile_id:' || p.klaviyo_profile_id
    group by identities.customer_id
),

web_features as (
    select
        identities.customer_id,
        count(*) filter (where d <= 30) as web_sessions_30d,
        count(*) filter (where d <= 90) as web_sessions_90d,
        count(*) filter (where d between 91 and 180) as web_sessions_prior_90d,
        coalesce(sum(product_views) filter (where d <= 90), 0) as product_views_90d,
        coalesce(sum(add_to_carts) filter (where d <= 90), 0) as add_to_carts_90d
    from (
        select s.*, c.cutoff_date - s.session_date as d
        from {{ ref('int_web_sessions_rolled_up') }} as s
        cross join cutoff as c
        where s.session_started_at < c.cutoff_date
            and s.session_started_at >= c.cutoff_date - 181
    ) as w
    inner join identities
        on identities.node_key = 'ga4:user_pseudo_id:' || w.user_pseudo_id || ':' || w.stream_id
    group by identities.customer_id
),

ticket_features as (
    select
        identities.customer_id,
        count(*) filter (where d <= 30) as tickets_30d,
        count(*) filter (where d <= 90) as tickets_90d,
        count(*) as tickets_total,
        -- a rating is known once the ticket was solved before the cutoff
        avg(satisfaction_score) filter (where closed_at < cutoff_date) as csat_avg
    from (
        select t.*, c.cutoff_date, c.cutoff_date - t.created_at::date as d
        from {{ ref('stg_helpdesk__tickets') }} as t
        cross join cutoff as c
        where t.created_at < c.cutoff_date
    ) as t
    inner join identities
        on identities.node_key = 'helpdesk:requester_id:' || t.requester_id::text
    group by identities.customer_id
),

final as (
    select
        customers.customer_id,
        c.cutoff_date,
        coalesce(o.orders_count, 0) > 0 as is_buyer,
        c.cutoff_date - customers.first_seen_at::date as tenure_days,
        c.cutoff_date - o.first_order_at::date as days_since_first_order,
        c.cutoff_date - o.last_order_at::date as days_since_last_order,
        coalesce(o.orders_count, 0) as orders_count,
        coalesce(o.orders_90d, 0) as orders_90d,
        coalesce(o.orders_prior_90d, 0) as orders_prior_90d,
        coalesce(o.orders_365d, 0) as orders_365d,
        coalesce(o.monetary_value, 0)::numeric(12,2) as monetary_value,
        coalesce(o.monetary_365d, 0)::numeric(12,2) as monetary_365d,
        o.average_order_value::numeric(12,2) as average_order_value,
        round(g.avg_days_between_orders::numeric, 1) as avg_days_between_orders,
        round(g.stddev_days_between_orders::numeric, 1) as stddev_days_between_orders,
        round(((c.cutoff_date - o.last_order_at::date)
            / nullif(coalesce(s.subscription_interval_days, g.avg_days_between_orders), 0)
        )::numeric, 2) as order_overdue_ratio,
        round(o.discount_order_share, 3) as discount_order_share,
        round(coalesce(o.refund_share, 0), 3) as refund_share,
        round(o.subscription_order_share, 3) as subscription_order_share,
        coalesce(s.subscription_status_at_cutoff, 'never') as subscription_status,
        coalesce(s.subscription_status_at_cutoff in ('active', 'paused'), false)
            as is_subscriber,
        s.subscription_interval_days,
        coalesce(s.skips_90d, 0) as subscription_skips_90d,
        coalesce(s.pauses_total, 0) as subscription_pauses_total,
        coalesce(e.emails_sent_30d, 0) as emails_sent_30d,
        coalesce(e.emails_sent_90d, 0) as emails_sent_90d,
        coalesce(e.email_opens_30d, 0) as email_opens_30d,
        coalesce(e.email_opens_90d, 0) as email_opens_90d,
        coalesce(e.email_opens_prior_90d, 0) as email_opens_prior_90d,
        coalesce(e.email_clicks_30d, 0) as email_clicks_30d,
        coalesce(e.email_clicks_90d, 0) as email_clicks_90d,
        coalesce(e.email_clicks_prior_90d, 0) as email_clicks_prior_90d,
        round(e.email_opens_90d::numeric / nullif(e.emails_sent_90d, 0), 4) as email_open_rate_90d,
        coalesce(e.has_unsubscribed, false) as has_unsubscribed,
        coalesce(w.web_sessions_30d, 0) as web_sessions_30d,
        coalesce(w.web_sessions_90d, 0) as web_sessions_90d,
        coalesce(w.web_sessions_prior_90d, 0) as web_sessions_prior_90d,
        coalesce(w.product_views_90d, 0) as product_views_90d,
        coalesce(w.add_to_carts_90d, 0) as add_to_carts_90d,
        coalesce(t.tickets_30d, 0) as tickets_30d,
        coalesce(t.tickets_90d, 0) as tickets_90d,
        coalesce(t.tickets_total, 0) as tickets_total,
        round(t.csat_avg, 2) as csat_avg
    from customers
    cross join cutoff as c
    left join order_features as o on o.customer_id = customers.customer_id
    left join gap_features as g on g.customer_id = customers.customer_id
    left join subscription_features as s on s.customer_id = customers.customer_id
    left join email_features as e on e.customer_id = customers.customer_id
    left join web_features as w on w.customer_id = customers.customer_id
    left join ticket_features as t on t.customer_id = customers.customer_id
)

select * from final
{% endmacro %}

{#- The cutoff for marts.churn_features: var('churn_cutoff_date') or the day after as_of_date. -#}
{% macro churn_cutoff_sql() -%}
    {%- if var('churn_cutoff_date') -%}
        '{{ var("churn_cutoff_date") }}'::date
    {%- else -%}
        ((select as_of_date from {{ ref('int_as_of_date') }}) + 1)
    {%- endif -%}
{%- endmacro %}
