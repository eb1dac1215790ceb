-- No feature row may count an order on or after its cutoff: the last order is before it.
select customer_id, cutoff_date, days_since_last_order
from {{ ref('churn_features') }}
where days_since_last_order < 1 or days_since_first_order < days_since_last_order
