"""Sample data for `make demo`, so a newcomer sees a living town rather than an empty broker."""

from cityhub.demo.city import SampleCity, build_city

__all__ = ["SampleCity", "build_city"]
