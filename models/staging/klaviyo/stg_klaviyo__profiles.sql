with

source as (
    select * from {{ source('raw_klaviyo', 'profiles') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by id order by updated desc, _loaded_at desc
        ) as version_rank
    from source
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
    where version_rank = 1
)

select * from final
