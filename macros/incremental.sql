{#-
    Incremental models and the landing barrier.

    Every incremental model stores, per row, `_loaded_at` (when the newest raw record behind the
    row was landed: the raw tables' landing-transaction time) and `_built_at` (the barrier of the
    build that wrote it), and in ops.incremental_barriers the barrier of its last successful
    build (written by its post-hook, in the model's own transaction). A build re-reads only the
    raw records landed at or after that barrier.

    That is exact, not a guess with a margin, because of the barrier: at the start of every dbt
    invocation (on-run-start) the build notes the time and then waits for every landing
    transaction in flight to commit (loads hold a shared advisory lock for their whole
    transaction, taken as its first statement; the barrier takes it exclusively). So a raw row
    stamped before the barrier is committed, and visible, before any model reads; a row stamped
    after it is read by the next build. The build waits for the batches being landed (each is one
    short transaction); a batch that starts meanwhile waits for the same ones, never for the
    build itself.
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
    create table if not exists ops.incremental_barriers (
        model       text primary key,
        barrier_at  timestamptz not null,
        built_at    timestamptz not null default now()
    );
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

{#- the barrier of this model's last successful build; -infinity before its first (or for a
    table built before barriers were recorded): then everything is read, once.
    Rendered as a literal, read when the model is compiled (just before it runs, after this
    invocation's barrier): `_loaded_at >= <constant>` lets the planner see that a night's rows
    are few and use the BRIN indexes on `_loaded_at`; against a sub-select it assumes a third
    of the table and scans all of it. -#}
{% macro last_build_barrier() -%}
    {%- set barrier = '-infinity' -%}
    {%- if execute -%}
        {%- set found = run_query(
            "select barrier_at::text from ops.incremental_barriers where model = '"
            ~ this.schema ~ "." ~ this.identifier ~ "'"
        ) if adapter.get_relation(database=this.database, schema='ops', identifier='incremental_barriers') else none -%}
        {%- if found and found.rows | length > 0 -%}
            {%- set barrier = found.columns[0].values()[0] -%}
        {%- endif -%}
    {%- endif -%}
    '{{ barrier }}'::timestamptz
{%- endmacro %}

{#- post-hook of every incremental model: this build read everything landed before its barrier -#}
{% macro record_build_barrier() -%}
    insert into ops.incremental_barriers (model, barrier_at)
    values ('{{ this.schema }}.{{ this.identifier }}', {{ build_barrier() }})
    on conflict (model) do update set barrier_at = excluded.barrier_at, built_at = now()
{%- endmacro %}

{#- a row's records were landed since the last build of this model -#}
{% macro landed_since_last_build(column='_loaded_at') -%}
    {{ column }} >= {{ last_build_barrier() }}
{%- endmacro %}

{#- A delete+insert keyed on a date column, limited to the dates that changed. dbt's delete is
    `key in (select key from <temp table>)`, which PostgreSQL hash-joins against every row of the
    target; an array is an index condition (the BRIN index on the date). The dates are noted by a
    pre-hook into a session temp table (`note_changed_dates`, rendered at run time with the
    model's own `this`), and the predicate (`only_changed_dates`, a constant string: configs
    are rendered at parse time, when `this` and `source()` are not yet the real relations) reads
    it. `shift` widens every date by whole days each way. -#}
{% macro note_changed_dates(table, changed_dates_sql, shift=(0, 0)) -%}
    drop table if exists pg_temp.{{ table }};
    create temp table {{ table }} as
    select distinct changed.changed_date::date + shift as changed_date
    from ({{ changed_dates_sql }}) as changed (changed_date)
    cross join generate_series({{ shift[0] }}, {{ shift[1] }}) as shift
{%- endmacro %}

{% macro only_changed_dates(column, table) -%}
    DBT_INTERNAL_DEST.{{ column }} = any(array(select changed_date from pg_temp.{{ table }}))
{%- endmacro %}
