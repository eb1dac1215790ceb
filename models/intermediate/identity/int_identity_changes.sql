{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        post_hook=[
            "{{ index_on(['node_key', 'changed_at']) }}",
            "{{ record_build_barrier() }}",
        ],
    )
}}
{#-
    History of identity assignments: a row whenever an identity record gets a customer_id it did
    not have at the previous build. change_type:
      new      - a record seen for the first time
      merged   - its new customer joins records that had different customer_ids before
      split    - its previous customer's records now belong to several customers
      moved    - any other reassignment
    The first build records every record as `new`; an unchanged rebuild records nothing.
-#}

with

{% if is_incremental() %}
current_assignment as (
    -- only the records re-resolved since this table's last build can have changed
    -- (int_identities_stitched rewrites every record of a component it touches, so merges and
    -- splits are seen whole; a build that failed in between is caught up by the next)
    select
        node_key,
        customer_id
    from {{ ref('int_identities_stitched') }}
    where _built_at > {{ last_build_barrier() }}
),

previous_assignment as (
    select distinct on (history.node_key)
        history.node_key,
        history.customer_id
    from {{ this }} as history
    inner join current_assignment on current_assignment.node_key = history.node_key
    order by history.node_key, history.changed_at desc
),
{% else %}
current_assignment as (
    select
        node_key,
        customer_id
    from {{ ref('int_identities_stitched') }}
),

previous_assignment as (
    select
        null::text as node_key,
        null::text as customer_id
    where false
),
{% endif %}

joined as (
    select
        current_assignment.node_key,
        previous_assignment.customer_id as previous_customer_id,
        current_assignment.customer_id
    from current_assignment
    left join previous_assignment
        on previous_assignment.node_key = current_assignment.node_key
),

previous_ids_per_customer as (
    select
        customer_id,
        count(distinct previous_customer_id) as previous_ids_in_new
    from joined
    group by customer_id
),

new_ids_per_previous as (
    select
        previous_customer_id,
        count(distinct customer_id) as new_ids_in_previous
    from joined
    where previous_customer_id is not null
    group by previous_customer_id
),

compared as (
    select
        joined.*,
        previous_ids_per_customer.previous_ids_in_new,
        new_ids_per_previous.new_ids_in_previous
    from joined
    left join previous_ids_per_customer
        on previous_ids_per_customer.customer_id = joined.customer_id
    left join new_ids_per_previous
        on new_ids_per_previous.previous_customer_id = joined.previous_customer_id
    where joined.previous_customer_id is distinct from joined.customer_id
),

final as (
    select
        node_key,
        previous_customer_id,
        customer_id,
        case
            when previous_customer_id is null then 'new'
            when previous_ids_in_new > 1 then 'merged'
            when new_ids_in_previous > 1 then 'split'
            else 'moved'
        end as change_type,
        now() as changed_at,
        -- the build that recorded it (macros/incremental.sql): int_timeline_events re-reads the
        -- records reassigned by builds after its own last one
        {{ build_barrier() }} as _built_at
    from compared
)

select * from final
