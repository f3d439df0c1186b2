"""Published figures the report holds a run against (sources and confidence: docs/REALISM.md)."""

from __future__ import annotations

# Sistrix 2020 (80M keywords): CTR by rank, ranks 1-4 and 10 published, 5-9 from its fit 31.7 k^-1.06.
SISTRIX_CTR = [28.5, 15.7, 11.0, 8.0, 5.9, 4.9, 4.1, 3.6, 3.1, 2.5]
BACKLINKO = {"rank_1_ctr": 0.317, "rank_2_ctr": 0.247, "top_3_share_of_clicks": 0.75}
REALISM = {
    "lead_time_mean_days": [21, 24],
    "lead_time_share_within_7_days": 0.415,
    "lead_time_share_within_30_days": 0.80,
    "nights_mean": 4.0,
    "nights_median": [2, 3],
    "hotel_night_usd": 155.62,
    "airfare_round_trip_usd": 469.0,
    "car_day_usd": [55, 85],
    "searches_per_session": [1.6, 3.0],
    "visit_minutes_mobile": 6.0,
    "returning_visitor_share": 0.32,
    "mobile_traffic_share": 0.55,
    "smartphone_booking_value_vs_desktop": 0.57,
    "desktop_share_of_bookings": {"flight": 0.78, "hotel": 0.61, "car": 0.60, "package": 0.68},
    "commission": {"flight": 0.0, "hotel": 0.15, "car": [0.03, 0.05], "package": 0.10},
}
