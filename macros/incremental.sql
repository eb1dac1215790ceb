{#-
    Incremental models and the landing barrier.

    Every incremental model stores, per row, `_loaded_at` (when the newest raw record behind the
    row was landed: the raw tables' landing-transaction time) and `_built_at` (this build's
    barrier time). A build re-reads only the raw records landed at or after the barrier of the
    last build that wrote the model.

    That is exact, not a guess with a margin, because of the barrier: at the start of every dbt
    invocation (on-run-start) the build notes the time and then waits for every landing
    transaction in flight to commit (loads hold a shared advisory lock for their whole
    transaction, taken as its first statement; the barrier takes it exclusively). So a raw row
    stamped before the barrier is committed, and visible, before any model reads; a row stamped
    after it is read by the next build. Loads never wait on a build for longer than that instant.
    The watermark is load time, not event time: a record of any age that lands late (a refund
    of a two-year-old order, a re-exported GA4 day) is picked up by the next nightly build.
-#}

{% macro landing_barrier() -%}
    create schema if not exists ops;
    create table if not exists ops.dbt_build_barriers (
        invocation_id  text primary key,
        barrier_at     timestamptz not null
    );
    {#- one implicit transaction: now() is noted before the lock is asked for -#}
    insert into ops.dbt_build_barriers (invocation_id, barrier_at)
    values ('{{ invocation_id }}', now())
    on conflict (invocation_id) do nothing;
    select pg_advisory_xact_lock(hashtext('cdp.raw_landing'));
    delete from ops.dbt_build_barriers where barrier_at < now() - interval '30 days';
{%- endmacro %}

{#- this invocation's barrier time: the `_built_at` of every row an incremental model writes -#}
{% macro build_barrier() -%}
    coalesce(
        (select barrier_at from ops.dbt_build_barriers
         where invocation_id = '{{ invocation_id }}'),
        '-infinity'::timestamptz
    )
{%- endmacro %}

{#- the barrier of the last build that wrote this model (-infinity when it has no rows, or was
    built before it carried _built_at: then everything is read, once) -#}
{% macro last_build_barrier() -%}
    {%- set seen = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- if '_built_at' in seen -%}
    (select coalesce(max(_built_at), '-infinity'::timestamptz) from {{ this }})
    {%- else -%}
    '-infinity'::timestamptz
    {%- endif -%}
{%- endmacro %}

{#- a row's records were landed since the last build of this model -#}
{% macro landed_since_last_build(column='_loaded_at') -%}
    {{ column }} >= {{ last_build_barrier() }}
{%- endmacro %}
