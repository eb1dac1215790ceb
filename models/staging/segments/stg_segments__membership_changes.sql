with

source as (
    select * from {{ source('segments', 'membership_changes') }}
),

final as (
    select
        segment,
        customer_id,
        change,
        changed_at,
        run_id
    from source
)

select * from final
