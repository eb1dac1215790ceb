{#-
    on-run-start: ANALYZE every source table whose planner statistics are missing or stale (never
    analyzed, or more than 10% of its rows changed since), before any model reads it.

    A batch lands and the pipeline builds at once, before autovacuum has looked at the new rows:
    without statistics the planner guesses a few hundred rows for a freshly loaded table of
    hundreds of thousands and plans nested loops. Tables with fresh statistics are left alone,
    so an unchanged rebuild (or the second dbt step of a pipeline run) analyzes nothing.
-#}
{% macro analyze_stale_sources() %}
    {%- if execute -%}
    {%- set tables = [] -%}
    {%- for source in graph.sources.values() -%}
        {%- do tables.append(source.schema ~ '.' ~ source.identifier) -%}
    {%- endfor %}
do $analyze_sources$
declare
    stale record;
begin
    for stale in
        select format('%I.%I', s.schemaname, s.relname) as relation
        from pg_stat_user_tables as s
        inner join pg_class as c on c.oid = s.relid
        where s.schemaname || '.' || s.relname in (
            {%- for table in tables | unique | sort %}'{{ table }}'{{ ', ' if not loop.last }}{% endfor -%}
        )
            and (
                c.reltuples < 0  -- never vacuumed nor analyzed
                or not exists (select from pg_statistic where starelid = c.oid)
                or s.n_mod_since_analyze > 50 + 0.1 * c.reltuples
            )
    loop
        execute 'analyze ' || stale.relation;
    end loop;
end
$analyze_sources$
    {%- endif -%}
{% endmacro %}
