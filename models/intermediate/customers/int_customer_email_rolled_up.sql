{{
    config(post_hook=["{{ index_on(['customer_id'], unique=true) }}"])
}}
{#- Email engagement per customer over the 30 and 90 days before as_of and the 90 days before
    those (for the trend). Rates are opens (clicks) per email received. -#}

with

events as (
    select * from {{ ref('stg_klaviyo__events') }}
),

profiles as (
    select * from {{ ref('stg_klaviyo__profiles') }}
),

identities as (
    select * from {{ ref('int_identities_stitched') }}
    where source = 'klaviyo'
),

as_of as (
    select * from {{ ref('int_as_of_date') }}
),

windowed as (
    select
        events.klaviyo_profile_id,
        events.event_type,
        as_of.as_of_date - events.occurred_at::date as days_ago,
        events.occurred_at
    from events
    cross join as_of
    where events.occurred_at::date <= as_of.as_of_date
),

per_profile as (
    -- rolled up per Klaviyo profile first, then per customer: joining each profile's totals to
    -- the identity graph instead of each event saves building and matching a key per event
    select
        klaviyo_profile_id,
        count(*) filter (where event_type = 'email_received' and days_ago < 30) as emails_sent_30d,
        count(*) filter (where event_type = 'email_opened' and days_ago < 30) as email_opens_30d,
        count(*) filter (where event_type = 'email_clicked' and days_ago < 30) as email_clicks_30d,
        count(*) filter (where event_type = 'email_received' and days_ago < 90) as emails_sent_90d,
        count(*) filter (where event_type = 'email_opened' and days_ago < 90) as email_opens_90d,
        count(*) filter (where event_type = 'email_clicked' and days_ago < 90) as email_clicks_90d,
        count(*) filter (where event_type = 'email_received' and days_ago between 90 and 179)
            as emails_sent_prior_90d,
        count(*) filter (where event_type = 'email_opened' and days_ago between 90 and 179)
            as email_opens_prior_90d,
        max(occurred_at) filter (where event_type = 'email_opened') as last_email_opened_at,
        max(occurred_at) filter (where event_type = 'email_clicked') as last_email_clicked_at,
        bool_or(event_type = 'email_unsubscribed') as has_unsubscribed_event
    from windowed
    group by klaviyo_profile_id
),

rolled_up as (
    select
        identities.customer_id,
        sum(per_profile.emails_sent_30d)::bigint as emails_sent_30d,
        sum(per_profile.email_opens_30d)::bigint as email_opens_30d,
        sum(per_profile.email_clicks_30d)::bigint as email_clicks_30d,
        sum(per_profile.emails_sent_90d)::bigint as emails_sent_90d,
        sum(per_profile.email_opens_90d)::bigint as email_opens_90d,
        sum(per_profile.email_clicks_90d)::bigint as email_clicks_90d,
        sum(per_profile.emails_sent_prior_90d)::bigint as emails_sent_prior_90d,
        sum(per_profile.email_opens_prior_90d)::bigint as email_opens_prior_90d,
        max(per_profile.last_email_opened_at) as last_email_opened_at,
        max(per_profile.last_email_clicked_at) as last_email_clicked_at,
        bool_or(per_profile.has_unsubscribed_event) as has_unsubscribed_event
    from per_profile
    inner join identities
        on identities.node_key = 'klaviyo:profile_id:' || per_profile.klaviyo_profile_id
    group by identities.customer_id
),

consent as (
    select
        identities.customer_id,
        bool_or(profiles.is_email_subscribed) as is_klaviyo_subscribed
    from profiles
    inner join identities
        on identities.node_key = 'klaviyo:profile_id:' || profiles.klaviyo_profile_id
    group by identities.customer_id
),

final as (
    select
        coalesce(rolled_up.customer_id, consent.customer_id) as customer_id,
        coalesce(emails_sent_30d, 0) as emails_sent_30d,
        coalesce(email_opens_30d, 0) as email_opens_30d,
        coalesce(email_clicks_30d, 0) as email_clicks_30d,
        coalesce(emails_sent_90d, 0) as emails_sent_90d,
        coalesce(email_opens_90d, 0) as email_opens_90d,
        coalesce(email_clicks_90d, 0) as email_clicks_90d,
        coalesce(emails_sent_prior_90d, 0) as emails_sent_prior_90d,
        coalesce(email_opens_prior_90d, 0) as email_opens_prior_90d,
        {{ ratio('email_opens_30d', 'emails_sent_30d') }} as email_open_rate_30d,
        {{ ratio('email_clicks_30d', 'emails_sent_30d') }} as email_click_rate_30d,
        {{ ratio('email_opens_90d', 'emails_sent_90d') }} as email_open_rate_90d,
        {{ ratio('email_clicks_90d', 'emails_sent_90d') }} as email_click_rate_90d,
        {{ ratio('email_opens_prior_90d', 'emails_sent_prior_90d') }} as email_open_rate_prior_90d,
        last_email_opened_at,
        last_email_clicked_at,
        coalesce(has_unsubscribed_event, false) as has_unsubscribed_event,
        is_klaviyo_subscribed
    from rolled_up
    full outer join consent on consent.customer_id = rolled_up.customer_id
)

select * from final
