{{
    config(post_hook=["{{ index_on(['customer_id'], unique=true) }}"])
}}

with

subscriptions as (
    select * from {{ ref('stg_subscriptions__subscriptions') }}
),

subscription_events as (
    select * from {{ ref('stg_subscriptions__events') }}
),

identities as (
    select * from {{ ref('int_identities_stitched') }}
    where source = 'subscriptions'
),

as_of as (
    select * from {{ ref('int_as_of_date') }}
),

with_customer as (
    select
        identities.customer_id,
        subscriptions.*,
        case subscriptions.subscription_status
            when 'active' then 1
            when 'paused' then 2
            else 3
        end as status_rank
    from subscriptions
    inner join identities
        on identities.node_key
            = 'subscriptions:customer_id:' || subscriptions.subscription_customer_id::text
),

-- the subscription that describes the customer: an active one, else paused, else the latest
primary_subscription as (
    select distinct on (customer_id)
        *
    from with_customer
    order by customer_id, status_rank, updated_at desc, subscription_id
),

events_rolled_up as (
    select
        identities.customer_id,
        count(*) filter (
            where subscription_events.event_type = 'skipped'
                and subscription_events.occurred_at >= as_of.as_of_date - 90
        ) as skips_90d,
        count(*) filter (where subscription_events.event_type = 'skipped') as skips_total,
        max(subscription_events.occurred_at) filter (
            where subscription_events.event_type = 'charge_processed'
        ) as last_charge_at
    from subscription_events
    inner join identities
        on identities.node_key
            = 'subscriptions:customer_id:' || subscription_events.subscription_customer_id::text
    cross join as_of
    group by identities.customer_id
),

all_subscriptions as (
    select
        customer_id,
        count(*) as subscriptions_count,
        count(*) filter (where subscription_status = 'active') as active_subscriptions_count,
        min(created_at) as first_subscribed_at,
        sum(charge_amount * 365.25 / nullif(interval_days, 0)) filter (
            where subscription_status in ('active', 'paused')
        ) as annual_subscription_value
    from with_customer
    group by customer_id
),

final as (
    select
        primary_subscription.customer_id,
        primary_subscription.subscription_id as primary_subscription_id,
        primary_subscription.subscription_status,
        primary_subscription.product_title as subscription_product,
        primary_subscription.interval_days as subscription_interval_days,
        primary_subscription.charge_amount as subscription_charge_amount,
        coalesce(
            all_subscriptions.annual_subscription_value,
            primary_subscription.charge_amount * 365.25
                / nullif(primary_subscription.interval_days, 0)
        )::numeric(12,2) as annual_subscription_value,
        all_subscriptions.subscriptions_count,
        all_subscriptions.active_subscriptions_count,
        all_subscriptions.first_subscribed_at as subscription_started_at,
        primary_subscription.paused_at as subscription_paused_at,
        case when primary_subscription.subscription_status = 'cancelled'
            then coalesce(primary_subscription.cancelled_at, primary_subscription.updated_at)
        end as subscription_cancelled_at,
        case when primary_subscription.subscription_status = 'cancelled'
            then primary_subscription.cancellation_reason
        end as cancellation_reason,
        primary_subscription.next_charge_scheduled_at as next_charge_at,
        coalesce(events_rolled_up.skips_90d, 0) as skips_90d,
        coalesce(events_rolled_up.skips_total, 0) as skips_total,
        events_rolled_up.last_charge_at
    from primary_subscription
    inner join all_subscriptions on all_subscriptions.customer_id = primary_subscription.customer_id
    left join events_rolled_up on events_rolled_up.customer_id = primary_subscription.customer_id
)

select * from final
