{#- post_hook helper: `{{ index_on(['customer_id']) }}` indexes the model's table. -#}
{% macro index_on(columns, unique=false, using=none) -%}
    create {{ 'unique' if unique else '' }} index if not exists
        {{ this.identifier }}__{{ columns | join('_') }}__idx
        on {{ this }} {% if using %}using {{ using }} {% endif %}({{ columns | join(', ') }})
{%- endmacro %}

{#- run ANALYZE so the planner knows the fresh table's size before downstream models join it.
    `columns`: only those columns' statistics (what downstream joins, filters and groups on); the
    row count comes with them at a fraction of the cost of every column of a wide table. -#}
{% macro analyze_this(columns=none) -%}
    analyze {{ this }}{% if columns %} ({{ columns | join(', ') }}){% endif %}
{%- endmacro %}

{#- post_hook for full-recompute incremental models: remove rows whose key left the source. -#}
{% macro delete_missing_from_this(source_relation, key) -%}
    delete from {{ this }} as t
    where not exists (
        select 1 from {{ source_relation }} as s where s.{{ key }} = t.{{ key }}
    )
{%- endmacro %}
