{{
    config(
        post_hook=[
            "{{ index_on(['customer_id'], unique=true) }}",
            "{{ analyze_this(['customer_id']) }}",
        ],
    )
}}
{#-
    One row per unified customer with the blind-index hashes (never plaintext) of their current
    contact details: for each of email, phone, first name and last name, the most recently
    updated non-null value across all the customer's identity records that is not on the
    blocklist (pii.blocked_values). Activation decrypts these from pii.vault at export time,
    through the audited access path.
-#}

with

customers as (
    select * from {{ ref('customers') }}
),

identities as (
    select * from {{ ref('int_identities_stitched') }}
),

shopify_customers as (
    select * from {{ ref('stg_shopify__customers') }}
),

shopify_orders as (
    select * from {{ ref('stg_shopify__orders') }}
),

klaviyo_profiles as (
    select * from {{ ref('stg_klaviyo__profiles') }}
),

helpdesk_requesters as (
    select * from {{ ref('stg_helpdesk__requesters') }}
),

subscription_customers as (
    select * from {{ ref('stg_subscriptions__customers') }}
),

blocked_values as (
    select * from {{ ref('stg_pii__blocked_values') }}
),

contact_records as (
    select
        {{ identity_node_key("'shopify'", "'customer_id'", 'shopify_customer_id::text') }}
            as node_key,
        email_hash,
        phone_hash,
        first_name_hash,
        last_name_hash,
        updated_at
    from shopify_customers

    union all

    -- contact details typed at checkout belong to the order's customer
    select
        {{ identity_node_key("'shopify'", "'customer_id'", 'shopify_customer_id::text') }},
        email_hash,
        phone_hash,
        null,
        null,
        ordered_at
    from shopify_orders
    where shopify_customer_id is not null

    union all

    select
        {{ identity_node_key("'klaviyo'", "'profile_id'", 'klaviyo_profile_id') }},
        email_hash,
        phone_hash,
        first_name_hash,
        last_name_hash,
        updated_at
    from klaviyo_profiles

    union all

    select
        {{ identity_node_key("'helpdesk'", "'requester_id'", 'requester_id::text') }},
        email_hash,
        phone_hash,
        first_name_hash,
        last_name_hash,
        updated_at
    from helpdesk_requesters

    union all

    select
        {{ identity_node_key("'subscriptions'", "'customer_id'", 'subscription_customer_id::text') }},
        email_hash,
        null,
        first_name_hash,
        last_name_hash,
        updated_at
    from subscription_customers
),

customer_records as (
    select
        identities.customer_id,
        contact_records.email_hash,
        contact_records.phone_hash,
        contact_records.first_name_hash,
        contact_records.last_name_hash,
        contact_records.updated_at
    from contact_records
    inner join identities
        on identities.node_key = contact_records.node_key
),

unpivoted as (
    select customer_id, 'email' as contact_type, email_hash as value_hash, updated_at
    from customer_records
    where email_hash is not null
    union all
    select customer_id, 'phone', phone_hash, updated_at
    from customer_records
    where phone_hash is not null
    union all
    select customer_id, 'first_name', first_name_hash, updated_at
    from customer_records
    where first_name_hash is not null
    union all
    select customer_id, 'last_name', last_name_hash, updated_at
    from customer_records
    where last_name_hash is not null
),

allowed as (
    -- the blocklist holds email and phone values; names have none
    select unpivoted.*
    from unpivoted
    left join blocked_values
        on blocked_values.pii_type = unpivoted.contact_type
        and blocked_values.value_hash = unpivoted.value_hash
    where blocked_values.value_hash is null
        and unpivoted.value_hash <> ''
),

ranked as (
    select
        *,
        row_number() over (
            -- byte-order partitions: the same groups, sorted several times faster than by locale
            partition by customer_id collate "C", contact_type collate "C"
            order by updated_at desc nulls last, value_hash
        ) as recency_rank
    from allowed
),

current_contacts as (
    select
        customer_id,
        max(value_hash) filter (where contact_type = 'email') as email_hash,
        max(value_hash) filter (where contact_type = 'phone') as phone_hash,
        max(value_hash) filter (where contact_type = 'first_name') as first_name_hash,
        max(value_hash) filter (where contact_type = 'last_name') as last_name_hash,
        max(updated_at) as contacts_updated_at
    from ranked
    where recency_rank = 1
    group by customer_id
),

final as (
    select
        customers.customer_id,
        current_contacts.email_hash,
        current_contacts.phone_hash,
        current_contacts.first_name_hash,
        current_contacts.last_name_hash,
        current_contacts.contacts_updated_at
    from customers
    left join current_contacts
        on current_contacts.customer_id = customers.customer_id
)

select * from final
