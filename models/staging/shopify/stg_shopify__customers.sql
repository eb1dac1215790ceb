with

source as (
    select * from {{ source('raw_shopify', 'customers') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by id order by updated_at desc, _loaded_at desc
        ) as version_rank
    from source
),

final as (
    select
        id as shopify_customer_id,
        email_hash,
        phone_hash,
        first_name_hash,
        last_name_hash,
        state as account_state,
        coalesce(verified_email, false) as is_email_verified,
        email_marketing_consent,
        tags,
        city,
        province_code,
        country_code,
        created_at,
        updated_at
    from latest
    where version_rank = 1
)

select * from final
