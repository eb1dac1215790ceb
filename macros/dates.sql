{#- The reporting date ("today") for recency metrics: dbt var as_of_date or the data's latest day. -#}
{% macro as_of_date_sql() -%}
    (select as_of_date from {{ ref('int_as_of_date') }})
{%- endmacro %}

{#- Days between two dates (date - date is an integer in PostgreSQL). -#}
{% macro days_between(later, earlier) -%}
    ({{ later }}::date - {{ earlier }}::date)
{%- endmacro %}

{#- Safe ratio, null when the denominator is 0 or null. -#}
{% macro ratio(numerator, denominator, digits=4) -%}
    round(({{ numerator }})::numeric / nullif({{ denominator }}, 0), {{ digits }})
{%- endmacro %}
