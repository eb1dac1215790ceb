{#- Trend of a recent 90-day measure against the 90 days before it:
    up (> +20%), down (< -20%), flat, or none (no activity in either window). -#}
{% macro trend(recent, prior) -%}
    case
        when coalesce({{ recent }}, 0) = 0 and coalesce({{ prior }}, 0) = 0 then 'none'
        when coalesce({{ prior }}, 0) = 0 then 'up'
        when {{ recent }}::numeric / {{ prior }} > 1.2 then 'up'
        when {{ recent }}::numeric / {{ prior }} < 0.8 then 'down'
        else 'flat'
    end
{%- endmacro %}
