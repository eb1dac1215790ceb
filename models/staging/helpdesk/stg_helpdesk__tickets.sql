with

source as (
    select * from {{ source('raw_helpdesk', 'tickets') }}
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
        id as ticket_id,
        requester_id,
        email_hash,
        channel,
        subject,
        category,
        lower(status) as ticket_status,
        lower(status) in ('open', 'pending') as is_open,
        priority,
        satisfaction_score,
        created_at,
        updated_at,
        closed_at
    from latest
    where version_rank = 1
)

select * from final
