{{
    config(post_hook=["{{ index_on(['customer_id'], unique=true) }}"])
}}

with

tickets as (
    select * from {{ ref('stg_helpdesk__tickets') }}
),

identities as (
    select * from {{ ref('int_identities_stitched') }}
    where source = 'helpdesk'
),

as_of as (
    select * from {{ ref('int_as_of_date') }}
),

with_customer as (
    select
        identities.customer_id,
        tickets.*,
        as_of.as_of_date - tickets.created_at::date as days_ago
    from tickets
    inner join identities
        on identities.node_key = 'helpdesk:requester_id:' || tickets.requester_id::text
    cross join as_of
    where tickets.created_at::date <= as_of.as_of_date
),

final as (
    select
        customer_id,
        count(*) as tickets_total,
        count(*) filter (where days_ago < 30) as tickets_30d,
        count(*) filter (where days_ago < 90) as tickets_90d,
        count(*) filter (where is_open) as open_tickets,
        round(avg(satisfaction_score), 2) as csat_avg,
        round(avg(satisfaction_score) filter (where days_ago < 90), 2) as csat_avg_90d,
        max(created_at) as last_ticket_at
    from with_customer
    group by customer_id
)

select * from final
