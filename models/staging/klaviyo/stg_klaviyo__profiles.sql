with

source as (
    select * from {{ source('raw_klaviyo', 'profiles') }}
),

latest as (
    -- the latest version of each record. distinct on, not row_number() = 1: the planner
    -- estimates one row per id for it, but guesses 0.5% of rows for a rank filter and then
    -- picks nested loops for every join and test reading this view
    select distinct on (id)
        *
    from source
    order by id, updated desc, _loaded_at desc
),

final as (
    select
        id as klaviyo_profile_id,
        -- external_id is the Shopify customer id once Klaviyo synced the profile
        case when external_id ~ '^[0-9]{1,18}$' then external_id::bigint end
            as shopify_customer_id,
        email_hash,
        phone_hash,
        first_name_hash,
        last_name_hash,
        upper(email_consent) as email_consent,
        upper(email_consent) = 'SUBSCRIBED' as is_email_subscribed,
        location_city,
        location_region,
        location_country,
        source as signup_source,
        created as created_at,
        updated as updated_at
    from latest
)

select * from final
