"""`cityhub import csv|geojson|gtfs`: files become NGSI-LD entities, checked like API input."""
